import { createHash } from 'node:crypto';
import { HttpError, type Envelope, type Outbox } from '@checkout-saga/shared';
import { v7 } from 'uuid';
import type { OrderTables } from '../db.ts';
import type { SagaOrder } from '../saga/decide.ts';
import { startSaga } from '../saga/store.ts';

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

/**
 * Accepts an order: in one transaction the order, its saga, the history row and the
 * OrderCreated outbox row, plus, with an idempotency key, the key with the request hash and
 * the response. The key's primary key is the lock: a concurrent request with the same key
 * waits on the insert until the first commits, then finds the key and replays its response
 * (same body) or is refused with 409 (different body); it never creates a second order.
 */
export async function acceptOrder(
  outbox: Outbox<OrderTables>,
  order: SagaOrder,
  options: { sagaTimeoutMs: number; idempotencyKey?: string | undefined; traceparent?: string },
): Promise<Acceptance> {
  const hash = requestHash(order);
  return outbox.transaction(async (trx): Promise<Acceptance> => {
    const ids = { orderId: v7(), sagaId: v7() };
    const body: AcceptedBody = {
      status: 'accepted',
      ...ids,
      message: `order accepted; follow it at GET /orders/${ids.orderId}`,
    };
    const key = options.idempotencyKey;
    const claim = key === undefined ? undefined : { key, requestHash: hash, statusCode: 202, response: JSON.stringify(body) };
    const emit = (events: readonly Envelope[]) => outbox.enqueue(trx, events, options.traceparent ? { traceparent: options.traceparent } : {});
    if (await startSaga(trx, ids, order, options.sagaTimeoutMs, emit, claim)) return { statusCode: 202, body, replayed: false };

    // The key was taken; nothing was written. Read it in a statement of its own: the one that
    // found it taken may have waited for a concurrent first request, whose commit it cannot see.
    const first = await trx.selectFrom('idempotency_keys').selectAll().where('key', '=', claim!.key).executeTakeFirstOrThrow();
    if (first.request_hash !== hash) {
      throw new HttpError(409, 'idempotency_key_reused', 'this Idempotency-Key was already used for a different request body', { idempotencyKey: key });
    }
    return { statusCode: first.status_code, body: first.response as AcceptedBody, replayed: true };
  });
}
