import { createHash } from 'node:crypto';
import { HttpError, type Outbox } from '@checkout-saga/shared';
import type { Selectable, Transaction } from 'kysely';
import { v7 } from 'uuid';
import type { IdempotencyKeysTable, OrderTables } from '../db.ts';
import type { SagaOrder } from '../saga/decide.ts';
import { startSaga, type SagaStart } from '../saga/start.ts';

/*
 * Accepting one POST /orders: in one unit of work, the order, its saga, its history row and
 * its OrderCreated event, and with an Idempotency-Key, the key with the request's hash and the
 * response a retry replays. This is the path to read first; accept-together.ts accepts many
 * at once, to the same effect, for the order intake under load.
 */

export interface AcceptedBody {
  status: 'accepted';
  orderId: string;
  sagaId: string;
  message: string;
}

export interface Acceptance {
  statusCode: number;
  body: AcceptedBody;
  /** True when an Idempotency-Key matched an earlier request and this is its stored response. */
  replayed: boolean;
}

/** One POST /orders as it is accepted: the normalised order and the request headers that matter. */
export interface OrderRequest {
  order: SagaOrder;
  idempotencyKey?: string | undefined;
  /** Travels with the OrderCreated event as its message header. */
  traceparent?: string | undefined;
}

/**
 * Accepts one order in a transaction of its own. A request whose key was used before gets
 * that request's stored response (same body) or is refused with 409 (different body): it
 * never creates a second order. A key another transaction is inserting makes this one wait
 * for that commit, then replay or refuse.
 */
export async function acceptOrder(outbox: Outbox<OrderTables>, request: OrderRequest, sagaTimeoutMs: number): Promise<Acceptance> {
  const { start, body } = prepare(request);
  return outbox.transaction(async (trx) => {
    const created = await startSaga(trx, start, sagaTimeoutMs);
    if (!created) return replayOrRefuse(request, await firstUseOf(trx, start.claim!.key));
    await outbox.enqueue(trx, created, traceHeaders(request));
    return { statusCode: 202, body, replayed: false };
  });
}

/** A stable hash of a normalised order request: equal requests (125.5 and "125.50" alike) hash equally. */
export function requestHash(order: SagaOrder): string {
  const canonical = {
    customerId: order.customerId,
    customerEmail: order.customerEmail,
    items: order.items.map(({ sku, qty }) => ({ sku, qty })),
    amountMinor: order.amountMinor,
    currency: order.currency,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** Fresh ids for a request, the 202 body it gets, and the saga start that writes it. */
export function prepare(request: OrderRequest): { start: SagaStart; body: AcceptedBody } {
  const ids = { orderId: v7(), sagaId: v7() };
  const body: AcceptedBody = { status: 'accepted', ...ids, message: `order accepted; follow it at GET /orders/${ids.orderId}` };
  const key = request.idempotencyKey;
  const claim = key === undefined ? undefined : { key, requestHash: requestHash(request.order), statusCode: 202, response: JSON.stringify(body) };
  return { start: { ids, order: request.order, claim }, body };
}

export function traceHeaders(request: OrderRequest): Record<string, string> {
  return request.traceparent ? { traceparent: request.traceparent } : {};
}

type KeyUse = Selectable<IdempotencyKeysTable>;

/**
 * The first request made with a key that was found taken. Read in a statement of its own: the
 * one that found it taken may have waited for a concurrent first request, whose commit it cannot see.
 */
export async function firstUseOf(trx: Transaction<OrderTables>, key: string): Promise<KeyUse | undefined> {
  return trx.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirst();
}

/** A request whose key was taken: the first request's response if the bodies match, else 409. */
export function replayOrRefuse(request: OrderRequest, first: KeyUse | undefined): Acceptance {
  const key = request.idempotencyKey!;
  if (!first) throw new Error(`Idempotency-Key ${JSON.stringify(key)} was taken, yet it is not there`);
  if (first.request_hash !== requestHash(request.order)) {
    throw new HttpError(409, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request body', { idempotencyKey: key });
  }
  return { statusCode: first.status_code, body: first.response as AcceptedBody, replayed: true };
}
