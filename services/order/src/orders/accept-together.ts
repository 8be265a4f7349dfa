import type { Committed, Currency, Envelope, OrderLine, Outbox } from '@checkout-saga/shared';
import { sql, type Transaction } from 'kysely';
import type { OrderStatus, OrderTables } from '../db.ts';
import { begin, orderStatusOf, type SagaState } from '../saga/decide.ts';
import type { SagaStart } from '../saga/start.ts';
import { envelopes } from '../saga/store.ts';
import { prepare, replayOrRefuse, traceHeaders, type Acceptance, type OrderRequest } from './accept.ts';

/*
 * Accepting many orders in one transaction, for the order intake's group commit: for each
 * request exactly what acceptOrder (accept.ts) does alone, as a property test proves, with one
 * statement for all their rows and one outbox insert for all their events.
 */

type Trx = Transaction<OrderTables>;

/**
 * Accepts the requests in one transaction, an outcome each, in order. A refusal (409) is an
 * outcome, not an error: the others' orders still commit. An error (the database, a
 * constraint) rolls back the transaction for all of them.
 *
 * The same key given twice in one call acts as two calls in turn: the first request claims
 * it, the second gets its response or a 409.
 */
export async function acceptOrders(outbox: Outbox<OrderTables>, requests: readonly OrderRequest[], sagaTimeoutMs: number): Promise<Committed<Acceptance>[]> {
  const prepared = requests.map(prepare);
  return outbox.transaction(async (trx) => {
    const created = await startSagas(
      trx,
      prepared.map(({ start }) => start),
      sagaTimeoutMs,
    );
    await outbox.enqueueEach(
      trx,
      created.flatMap((event, index) => (event ? [{ event, headers: traceHeaders(requests[index]!) }] : [])),
    );
    // The keys that were taken, read in a statement of their own (see firstUseOf).
    const taken = prepared.filter((_, index) => !created[index]).map(({ start }) => start.claim!.key);
    const firsts = new Map(
      taken.length === 0
        ? []
        : (await trx.selectFrom('idempotency_keys').selectAll().where('key', '=', sql<string>`any(${taken}::text[])`).execute()).map((row) => [row.key, row]),
    );
    return prepared.map(({ body }, index): Committed<Acceptance> => {
      if (created[index]) return { ok: true, value: { statusCode: 202, body, replayed: false } };
      const request = requests[index]!;
      try {
        return { ok: true, value: replayOrRefuse(request, firsts.get(request.idempotencyKey!)) };
      } catch (refusal) {
        return { ok: false, refusal };
      }
    });
  });
}

/** One start as the statement reads it, every column typed in jsonb_to_recordset's list below. */
interface StartRow {
  position: number;
  key: string | null;
  request_hash: string | null;
  status_code: number | null;
  response: string | null;
  order_id: string;
  saga_id: string;
  customer_id: string | null;
  customer_email: string;
  items: OrderLine[];
  amount_minor: number;
  currency: Currency;
  status: OrderStatus;
  state: SagaState;
  event_id: string;
  type: string;
  compensation: boolean;
}

/**
 * startSaga (saga/start.ts) for many starts. Writes new orders and their sagas (PAYMENT_PENDING, deadline timeoutMs from now by the
 * database clock) and records OrderCreated in each history. Returns, start by start, the
 * OrderCreated the caller must emit in the same transaction, or undefined where nothing was
 * written because the start's key was taken.
 *
 * It is one statement however many orders there are, each insert selecting from the one
 * before, so that a start with a claim is written only if its key was free: when the key is
 * taken (or was taken by a concurrent request this statement waited for, or by an earlier
 * start of this same list), nothing of that start is written.
 */
async function startSagas(trx: Trx, starts: readonly SagaStart[], timeoutMs: number): Promise<(Envelope | undefined)[]> {
  if (starts.length === 0) return [];
  const created: Envelope[] = [];
  const rows = starts.map(({ ids, order, claim }, position): StartRow => {
    const decision = begin(order);
    const emitted = envelopes(ids, decision.events);
    const [event] = emitted;
    if (!event || emitted.length !== 1) throw new Error(`a saga starts with one event, not ${emitted.length}`);
    created.push(event);
    return {
      position,
      key: claim?.key ?? null,
      request_hash: claim?.requestHash ?? null,
      status_code: claim?.statusCode ?? null,
      response: claim?.response ?? null,
      order_id: ids.orderId,
      saga_id: ids.sagaId,
      customer_id: order.customerId,
      customer_email: order.customerEmail,
      items: order.items,
      amount_minor: order.amountMinor,
      currency: order.currency,
      status: orderStatusOf(decision.state),
      state: decision.state,
      event_id: event.eventId,
      type: event.type,
      compensation: decision.compensation,
    };
  });

  // The starts travel as one jsonb parameter, so the statement's text is the same for any
  // number of them and is prepared once per connection. `response` stays a string inside it:
  // a jsonb value would not keep the body byte for byte.
  const written = await trx
    .with('start', () =>
      sql<StartRow>`(select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as start(
        position integer, key text, request_hash text, status_code integer, response text,
        order_id uuid, saga_id uuid, customer_id text, customer_email text, items jsonb, amount_minor bigint,
        currency text, status text, state text, event_id uuid, type text, compensation boolean))`,
    )
    .with('claimed', (db) =>
      db
        .insertInto('idempotency_keys')
        .columns(['key', 'request_hash', 'status_code', 'response', 'order_id'])
        .expression((eb) =>
          eb
            .selectFrom('start')
            .select(['start.key', 'start.request_hash', 'start.status_code', sql<string>`start.response::json`.as('response'), 'start.order_id'])
            .where('start.key', 'is not', null)
            // Keys in one order, so two statements claiming some of the same keys queue up
            // instead of deadlocking; a key given twice goes to its first start, the second
            // is skipped as a conflict.
            .orderBy('start.key')
            .orderBy('start.position'),
        )
        .onConflict((conflict) => conflict.column('key').doNothing())
        .returning('order_id'),
    )
    .with('new_order', (db) =>
      db
        .insertInto('orders')
        .columns(['order_id', 'saga_id', 'customer_id', 'customer_email', 'items', 'amount_minor', 'currency', 'status'])
        .expression((eb) =>
          eb
            .selectFrom('start')
            .select([
              'start.order_id',
              'start.saga_id',
              'start.customer_id',
              'start.customer_email',
              'start.items',
              'start.amount_minor',
              'start.currency',
              'start.status',
            ])
            .where((where) => where.or([where('start.key', 'is', null), where('start.order_id', 'in', where.selectFrom('claimed').select('claimed.order_id'))])),
        )
        .returning('order_id'),
    )
    .with('new_saga', (db) =>
      db
        .insertInto('sagas')
        .columns(['saga_id', 'order_id', 'state', 'timeout_at'])
        .expression((eb) =>
          eb
            .selectFrom('new_order')
            .innerJoin('start', 'start.order_id', 'new_order.order_id')
            .select([
              'start.saga_id',
              'start.order_id',
              'start.state',
              sql<Date>`clock_timestamp() + ${timeoutMs}::integer * interval '1 millisecond'`.as('timeout_at'),
            ]),
        )
        .returning('saga_id'),
    )
    .insertInto('saga_history')
    .columns(['saga_id', 'event_id', 'type', 'to_state', 'compensation'])
    .expression((eb) =>
      eb
        .selectFrom('new_saga')
        .innerJoin('start', 'start.saga_id', 'new_saga.saga_id')
        .select(['start.saga_id', 'start.event_id', 'start.type', 'start.state as to_state', 'start.compensation']),
    )
    .returning('saga_id')
    .execute();
  const started = new Set(written.map((row) => row.saga_id));
  return starts.map(({ ids }, position) => (started.has(ids.sagaId) ? created[position] : undefined));
}
