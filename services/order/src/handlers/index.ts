import { inventoryFailed } from './inventory-failed.ts';
import { inventoryReserved } from './inventory-reserved.ts';
import { paymentCompleted } from './payment-completed.ts';
import { paymentFailed } from './payment-failed.ts';
import { paymentRefunded } from './payment-refunded.ts';

/** Every event the order service consumes, one handler each. */
export const sagaHandlers = [paymentCompleted, paymentFailed, inventoryReserved, inventoryFailed, paymentRefunded] as const;

export { UnknownSagaError } from './saga-event.ts';
