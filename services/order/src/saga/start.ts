import type { Envelope } from '@checkout-saga/shared';
import { sql, type Transaction } from 'kysely';
import type { OrderTables } from '../db.ts';
import { begin, orderStatusOf, type SagaSnapshot } from './decide.ts';
import { envelopes } from './store.ts';

/** An Idempotency-Key to claim as the saga starts, with the response a retry replays. */
export interface KeyClaim {
  key: string;
  requestHash: string;
  statusCode: number;
  /** The response body as JSON text, stored as written so a replay returns it byte for byte. */
  response: string;
}

/** A saga to start: its ids, its order, and the Idempotency-Key to claim for it, if any. */
export interface SagaStart {
  ids: { orderId: string; sagaId: string };
  order: SagaSnapshot['order'];
  claim?: KeyClaim | undefined;
}

/**
 * Writes a new order and its saga (PAYMENT_PENDING, deadline timeoutMs from now by the database
 * clock) and records OrderCreated in its history. Returns the OrderCreated the caller must emit
 * in the same transaction, or undefined when the start's key was taken and nothing was written.
 *
 * The key's primary key is the lock: a start whose key another transaction is inserting waits
 * until that one ends, then finds the key taken (or free, if it rolled back).
 */
export async function startSaga(trx: Transaction<OrderTables>, { ids, order, claim }: SagaStart, timeoutMs: number): Promise<Envelope | undefined> {
  if (claim) {
    const claimed = await trx
      .insertInto('idempotency_keys')
      .values({ key: claim.key, request_hash: claim.requestHash, status_code: claim.statusCode, response: claim.response, order_id: ids.orderId })
      .onConflict((conflict) => conflict.column('key').doNothing())
      .returning('key')
      .executeTakeFirst();
    if (!claimed) return undefined;
  }
  const { state, compensation, events } = begin(order);
  const [created] = envelopes(ids, events);
  if (!created || events.length !== 1) throw new Error(`a saga starts with one event, not ${events.length}`);
  await trx
    .insertInto('orders')
    .values({
      order_id: ids.orderId,
      saga_id: ids.sagaId,
      customer_id: order.customerId,
      customer_email: order.customerEmail,
      items: JSON.stringify(order.items),
      amount_minor: order.amountMinor,
      currency: order.currency,
      status: orderStatusOf(state),
    })
    .execute();
  await trx
    .insertInto('sagas')
    .values({ saga_id: ids.sagaId, order_id: ids.orderId, state, timeout_at: sql<Date>`clock_timestamp() + ${timeoutMs}::integer * interval '1 millisecond'` })
    .execute();
  await trx.insertInto('saga_history').values({ saga_id: ids.sagaId, event_id: created.eventId, type: created.type, to_state: state, compensation }).execute();
  return created;
}
