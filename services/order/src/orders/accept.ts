import { createHash } from 'node:crypto';
import { HttpError, type Outbox, type OutboxEntry } from '@checkout-saga/shared';
import { sql } from 'kysely';
import { v7 } from 'uuid';
import type { OrderTables } from '../db.ts';
import type { SagaOrder } from '../saga/decide.ts';
import { startSagas } from '../saga/store.ts';

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

/** One POST /orders as it is accepted: the normalised order and the request headers that matter. */
export interface OrderRequest {
  order: SagaOrder;
  idempotencyKey?: string | undefined;
  /** Travels with the OrderCreated event as its message header. */
  traceparent?: string | undefined;
}

/** What became of one request of a transaction: accepted (or replayed), or refused with an HttpError. */
export type AcceptOutcome = { accepted: Acceptance } | { refused: HttpError };

/**
 * Accepts orders in one transaction: for each, the order, its saga, the history row and the
 * OrderCreated outbox row, plus, with an idempotency key, the key with the request hash and
 * the response. The key's primary key is the lock: a request whose key another transaction
 * is inserting waits until that one commits, then finds the key and replays its response
 * (same body) or is refused with 409 (different body); it never creates a second order. The
 * same holds for a key given twice in one call: the first request claims it, the second
 * gets its response or a 409.
 *
 * A refusal is an outcome, not an error: the others' orders still commit. An error (the
 * database, a constraint) rolls back the transaction for all of them.
 */
export async function acceptOrders(outbox: Outbox<OrderTables>, requests: readonly OrderRequest[], sagaTimeoutMs: number): Promise<AcceptOutcome[]> {
  const prepared = requests.map((request) => {
    const ids = { orderId: v7(), sagaId: v7() };
    const body: AcceptedBody = {
      status: 'accepted',
      ...ids,
      message: `order accepted; follow it at GET /orders/${ids.orderId}`,
    };
    const hash = requestHash(request.order);
    const key = request.idempotencyKey;
    const claim = key === undefined ? undefined : { key, requestHash: hash, statusCode: 202, response: JSON.stringify(body) };
    return { request, ids, body, hash, claim };
  });
  return outbox.transaction(async (trx): Promise<AcceptOutcome[]> => {
    const created = await startSagas(
      trx,
      prepared.map(({ ids, request, claim }) => ({ ids, order: request.order, claim })),
      sagaTimeoutMs,
    );
    await outbox.enqueueEach(
      trx,
      created.flatMap((event, index): OutboxEntry[] => {
        const { traceparent } = prepared[index]!.request;
        return event ? [{ event, headers: traceparent ? { traceparent } : {} }] : [];
      }),
    );

    // The keys that were taken; nothing of their requests was written. Read them in a
    // statement of their own: the one that found them taken may have waited for concurrent
    // first requests, whose commits it cannot see.
    const taken = prepared.filter((_, index) => !created[index]).map(({ claim }) => claim!.key);
    const firsts = new Map(
      taken.length === 0
        ? []
        : (await trx.selectFrom('idempotency_keys').selectAll().where('key', '=', sql<string>`any(${taken}::text[])`).execute()).map((row) => [row.key, row]),
    );
    return prepared.map(({ body, hash, claim }, index): AcceptOutcome => {
      if (created[index]) return { accepted: { statusCode: 202, body, replayed: false } };
      const first = firsts.get(claim!.key);
      if (!first) throw new Error(`Idempotency-Key ${JSON.stringify(claim!.key)} was taken, yet it is not there`);
      if (first.request_hash !== hash) {
        return { refused: new HttpError(409, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request body', { idempotencyKey: claim!.key }) };
      }
      return { accepted: { statusCode: first.status_code, body: first.response as AcceptedBody, replayed: true } };
    });
  });
}

/** Accepts one order in a transaction of its own; a refusal is thrown. */
export async function acceptOrder(
  outbox: Outbox<OrderTables>,
  order: SagaOrder,
  options: { sagaTimeoutMs: number; idempotencyKey?: string | undefined; traceparent?: string },
): Promise<Acceptance> {
  const [outcome] = await acceptOrders(outbox, [{ order, idempotencyKey: options.idempotencyKey, traceparent: options.traceparent }], options.sagaTimeoutMs);
  if (!outcome) throw new Error('one request, no outcome');
  if ('refused' in outcome) throw outcome.refused;
  return outcome.accepted;
}
