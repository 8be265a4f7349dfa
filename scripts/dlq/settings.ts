import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static } from 'typebox';

/*
 * The dead-letter tool reads the same variables as the services, with the same defaults and
 * descriptions: the kit's definitions are reused, not copied. RABBITMQ_URL and QUEUE_PREFIX do
 * not depend on the service the kit is asked about; 'order' is only there to call it.
 */
const { RABBITMQ_URL, QUEUE_PREFIX, LOG_LEVEL } = messagingSettings('order', 3000);

export const dlqSettings = { RABBITMQ_URL, QUEUE_PREFIX, LOG_LEVEL };
export const DlqSettings = Type.Object(dlqSettings);
export type DlqConfig = Static<typeof DlqSettings>;
