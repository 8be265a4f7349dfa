import { PermanentFailure, type HandlerContext } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { ConsumedEventType } from '../saga/decide.ts';
import { recordTransition, type SagaMetrics } from '../saga/metrics.ts';
import { applyToSaga, lockSaga } from '../saga/store.ts';

/** An event that names a saga this database does not hold, or holds for another order: it can never apply. */
export class UnknownSagaError extends PermanentFailure {
  override name = 'UnknownSagaError';
}

/**
 * What every saga handler does with its event, inside the kit's handler transaction (which
 * has already claimed the event in the inbox): lock the saga row, decide, write the
 * transition and history, emit the resulting events.
 */
export async function applySagaEvent<T extends ConsumedEventType>(
  { event, trx, emit, log, afterCommit }: HandlerContext<OrderTables, T>,
  metrics?: SagaMetrics,
): Promise<void> {
  const saga = await lockSaga(trx, event.sagaId);
  if (!saga) throw new UnknownSagaError(`no saga ${event.sagaId} for ${event.type} ${event.eventId}`);
  if (saga.orderId !== event.orderId) {
    throw new UnknownSagaError(`${event.type} ${event.eventId} names order ${event.orderId} but saga ${event.sagaId} drives order ${saga.orderId}`);
  }
  const decision = await applyToSaga(trx, saga, { type: event.type }, event.eventId, emit);
  if (metrics) afterCommit(() => recordTransition(metrics, decision, saga.ages));
  const details = { from: saga.state, to: decision.state, transition: decision.transition, emitted: decision.events.map((e) => e.type) };
  if (decision.changed) log.info(details, 'saga transition');
  else log.info(details, `saga unchanged by ${decision.transition === 'late_event' ? 'a late' : 'an unexpected'} ${event.type}; recorded in its history`);
}
