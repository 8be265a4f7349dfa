import { inventoryFailed } from './inventory-failed.ts';
import { inventoryReserved } from './inventory-reserved.ts';
import { paymentCompleted } from './payment-completed.ts';
import { paymentFailed } from './payment-failed.ts';
import { paymentRefunded } from './payment-refunded.ts';

import type { SagaMetrics } from '../saga/metrics.ts';

/** Every event the order service consumes, one handler each, recording the transitions they commit in `metrics`. */
export function sagaHandlers(metrics?: SagaMetrics) {
  return [paymentCompleted, paymentFailed, inventoryReserved, inventoryFailed, paymentRefunded].map((handler) => handler(metrics));
}

export { UnknownSagaError } from './saga-event.ts';
