import { newEvent, type Envelope } from '@checkout-saga/shared';
import { sql, type Transaction } from 'kysely';
import type { OrderTables } from '../db.ts';
import { begin, decide, orderStatusOf, terminalStates, type Decision, type Emission, type SagaInput, type SagaSnapshot } from './decide.ts';

/*
 * The I/O around the saga state machine: reading and locking sagas, and writing one
 * transition (saga row, order row, history rows, events) inside the caller's transaction.
 */

type Trx = Transaction<OrderTables>;
type Emit = (events: readonly Envelope[]) => Promise<void>;

/** A saga row locked FOR UPDATE in the current transaction, with the order data decide needs. */
export interface LockedSaga extends SagaSnapshot {
  sagaId: string;
  orderId: string;
}

/** The history type recorded for a saga input: the consumed event's type, or SagaTimedOut. */
export function historyTypeOf(input: SagaInput): string {
  return input.type === 'Timeout' ? 'SagaTimedOut' : input.type;
}

function lockedSagas(trx: Trx) {
  return trx
    .selectFrom('sagas')
    .innerJoin('orders', 'orders.order_id', 'sagas.order_id')
    .select([
      'sagas.saga_id as sagaId',
      'sagas.order_id as orderId',
      'sagas.state',
      'sagas.reason',
      'orders.customer_id',
      'orders.customer_email',
      'orders.items',
      'orders.amount_minor',
      'orders.currency',
    ])
    .forUpdate('sagas');
}

type LockedRow = Awaited<ReturnType<ReturnType<typeof lockedSagas>['execute']>>[number];

function toLocked(row: LockedRow): LockedSaga {
  return {
    sagaId: row.sagaId,
    orderId: row.orderId,
    state: row.state,
    reason: row.reason,
    order: {
      customerId: row.customer_id,
      customerEmail: row.customer_email,
      items: row.items.map(({ sku, qty }) => ({ sku, qty })),
      amountMinor: row.amount_minor,
      currency: row.currency,
    },
  };
}

/** Locks one saga (waiting for a transaction that holds it), or undefined when there is no such saga. */
export async function lockSaga(trx: Trx, sagaId: string): Promise<LockedSaga | undefined> {
  const row = await lockedSagas(trx).where('sagas.saga_id', '=', sagaId).executeTakeFirst();
  return row && toLocked(row);
}

/**
 * Claims up to `limit` unfinished sagas whose deadline has passed, earliest first, skipping
 * ones another transaction holds (a handler mid-transition, or another timeout checker).
 */
export async function claimDueSagas(trx: Trx, limit: number): Promise<LockedSaga[]> {
  const rows = await lockedSagas(trx)
    .where('sagas.timeout_at', '<=', sql<Date>`now()`)
    .where('sagas.state', 'not in', terminalStates)
    .orderBy('sagas.timeout_at')
    .limit(limit)
    .skipLocked()
    .execute();
  return rows.map(toLocked);
}

/** The envelopes for a decision's payloads: fresh uuid v7 ids, so outbox and history sort by them. */
function envelopes(saga: { sagaId: string; orderId: string }, events: readonly Emission[]): Envelope[] {
  return events.map((event) => newEvent(event.type, saga, event.payload as never) as Envelope);
}

/**
 * Applies one input to a locked saga: decide, then in the caller's transaction update the
 * saga and order rows (when the state changed), append the input and every emitted event
 * to the history, and emit the events. An input that changes nothing is still recorded.
 */
export async function applyToSaga(trx: Trx, saga: LockedSaga, input: SagaInput, inputEventId: string, emit: Emit): Promise<Decision> {
  const decision = decide(saga, input);
  const emitted = envelopes(saga, decision.events);
  // Rows are produced in list order, each taking its own identity and clock_timestamp().
  const history = [{ type: historyTypeOf(input), eventId: inputEventId }, ...emitted].map((entry) => ({
    saga_id: saga.sagaId,
    event_id: entry.eventId,
    type: entry.type,
    from_state: saga.state,
    to_state: decision.state,
    compensation: decision.compensation,
  }));
  if (decision.changed) {
    // One statement, as each is a round trip. Its parts run in no set order, so updated_at may
    // read the clock a few microseconds after the history rows; those keep their order.
    await trx
      .with('saga_changed', (db) =>
        db
          .updateTable('sagas')
          .set({ state: decision.state, reason: decision.reason, updated_at: sql<Date>`clock_timestamp()` })
          .where('saga_id', '=', saga.sagaId),
      )
      .with('order_changed', (db) =>
        db
          .updateTable('orders')
          .set({ status: orderStatusOf(decision.state), reason: decision.reason, updated_at: sql<Date>`clock_timestamp()` })
          .where('order_id', '=', saga.orderId),
      )
      .insertInto('saga_history')
      .values(history)
      .execute();
  } else {
    await trx.insertInto('saga_history').values(history).execute();
  }
  await emit(emitted);
  return decision;
}

/** An Idempotency-Key to claim in the statement that starts the saga, with the response a retry replays. */
export interface KeyClaim {
  key: string;
  requestHash: string;
  statusCode: number;
  /** The response body as JSON text, stored as written so a replay returns it byte for byte. */
  response: string;
}

/**
 * Writes a new order and its saga (PAYMENT_PENDING, deadline timeoutMs from now by the
 * database clock), records OrderCreated in the history and emits it; returns the emitted events.
 *
 * It is one statement, each insert selecting from the one before, so that with a `claim` the
 * key is inserted first and everything else only if the key was free: when it is taken (or
 * was taken by a concurrent request this statement waited for), nothing is written and the
 * result is undefined.
 */
export async function startSaga(
  trx: Trx,
  ids: { orderId: string; sagaId: string },
  order: SagaSnapshot['order'],
  timeoutMs: number,
  emit: Emit,
  claim?: KeyClaim,
): Promise<Envelope[] | undefined> {
  const decision = begin(order);
  const emitted = envelopes(ids, decision.events);
  const [created] = emitted;
  if (!created || emitted.length !== 1) throw new Error(`a saga starts with one event, not ${emitted.length}`);

  const written = await trx
    .with('claimed', (db) =>
      claim
        ? db
            .insertInto('idempotency_keys')
            .values({ key: claim.key, request_hash: claim.requestHash, status_code: claim.statusCode, response: claim.response, order_id: ids.orderId })
            .onConflict((conflict) => conflict.column('key').doNothing())
            .returning('order_id')
        : db.selectNoFrom(sql<string>`${ids.orderId}::uuid`.as('order_id')),
    )
    .with('new_order', (db) =>
      db
        .insertInto('orders')
        .columns(['order_id', 'saga_id', 'customer_id', 'customer_email', 'items', 'amount_minor', 'currency', 'status'])
        .expression((eb) =>
          eb
            .selectFrom('claimed')
            .select([
              'claimed.order_id',
              eb.val(ids.sagaId).as('saga_id'),
              eb.val(order.customerId).as('customer_id'),
              eb.val(order.customerEmail).as('customer_email'),
              eb.val(JSON.stringify(order.items)).as('items'),
              eb.val(order.amountMinor).as('amount_minor'),
              eb.val(order.currency).as('currency'),
              eb.val(orderStatusOf(decision.state)).as('status'),
            ]),
        )
        .returning(['order_id', 'saga_id']),
    )
    .with('new_saga', (db) =>
      db
        .insertInto('sagas')
        .columns(['saga_id', 'order_id', 'state', 'timeout_at'])
        .expression((eb) =>
          eb
            .selectFrom('new_order')
            .select([
              'new_order.saga_id',
              'new_order.order_id',
              eb.val(decision.state).as('state'),
              sql<Date>`clock_timestamp() + ${timeoutMs}::integer * interval '1 millisecond'`.as('timeout_at'),
            ]),
        )
        .returning(['saga_id', 'state']),
    )
    .insertInto('saga_history')
    .columns(['saga_id', 'event_id', 'type', 'to_state', 'compensation'])
    .expression((eb) =>
      eb
        .selectFrom('new_saga')
        .select([
          'new_saga.saga_id',
          eb.val(created.eventId).as('event_id'),
          eb.val(created.type).as('type'),
          'new_saga.state as to_state',
          eb.val(decision.compensation).as('compensation'),
        ]),
    )
    .executeTakeFirstOrThrow();
  if (written.numInsertedOrUpdatedRows !== 1n) return undefined;
  await emit(emitted);
  return emitted;
}
