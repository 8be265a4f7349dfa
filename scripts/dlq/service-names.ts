import type { ServiceName } from '@checkout-saga/shared/internal';

/** Every service that consumes, so every one that has a dead-letter queue. Kept apart so parsing a command line loads nothing else. */
export const serviceNames = ['order', 'payment', 'inventory', 'notification'] as const satisfies readonly ServiceName[];
