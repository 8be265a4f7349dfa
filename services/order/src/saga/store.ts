import { newEvent, type Envelope } from '@checkout-saga/shared';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { OrderStatus, OrderTables } from '../db.ts';
import type { SagaAges } from './metrics.ts';
import { decide, orderStatusOf, terminalStates, type Decision, type Emission, type SagaInput, type SagaSnapshot, type SagaState } from './decide.ts';

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
  ages: SagaAges;
}

/** The history type recorded for a saga input: the consumed event's type, or SagaTimedOut. */
export function historyTypeOf(input: SagaInput): string {
  return input.type === 'Timeout' ? 'SagaTimedOut' : input.type;
}

function lockedSagas(db: Kysely<OrderTables>) {
  return db
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
      // By the database clock, as the lock is taken: no skew between it and this process.
      sql<number>`extract(epoch from clock_timestamp() - sagas.created_at)::float8`.as('since_start'),
      sql<number>`extract(epoch from clock_timestamp() - sagas.updated_at)::float8`.as('since_last_step'),
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
    ages: { sinceStartSeconds: row.since_start, sinceLastStepSeconds: row.since_last_step },
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
export function envelopes(saga: { sagaId: string; orderId: string }, events: readonly Emission[]): Envelope[] {
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
  const entries = [{ type: historyTypeOf(input), eventId: inputEventId }, ...emitted];
  const transition: Transition = {
    sagaId: saga.sagaId,
    orderId: saga.orderId,
    fromState: saga.state,
    toState: decision.state,
    orderStatus: orderStatusOf(decision.state),
    reason: decision.reason,
    compensation: decision.compensation,
    eventIds: entries.map((entry) => entry.eventId),
    types: entries.map((entry) => entry.type),
  };
  await (decision.changed ? writeTransition(trx, transition) : recordUnchanged(trx, transition)).execute();
  await emit(emitted);
  return decision;
}

/** One transition as its statement's parameters: the history entries as two arrays, so the text is the same for any number (prepared once per connection). */
type Transition = {
  sagaId: string;
  orderId: string;
  fromState: SagaState;
  toState: SagaState;
  orderStatus: OrderStatus;
  reason: Decision['reason'];
  compensation: boolean;
  eventIds: string[];
  types: string[];
};

/** The history rows of a transition, in list order: each takes its own identity and clock_timestamp() in that order. */
function historyRows(params: Transition) {
  return sql`
    select ${params.sagaId}::uuid, entry.event_id, entry.type, ${params.fromState}, ${params.toState}, ${params.compensation}
    from unnest(${params.eventIds}::uuid[], ${params.types}::text[]) with ordinality as entry (event_id, type, position)
    order by entry.position`;
}

const historyColumns = ['saga_id', 'event_id', 'type', 'from_state', 'to_state', 'compensation'] as const;

/**
 * Saga row, order row and history rows in one statement, as each is a round trip. Its parts run
 * in no set order, so updated_at may read the clock a few microseconds after the history rows.
 */
function writeTransition(db: Kysely<OrderTables>, params: Transition) {
  return db
    .with('saga_changed', (qc) =>
      qc
        .updateTable('sagas')
        .set({ state: params.toState, reason: params.reason, updated_at: sql<Date>`clock_timestamp()` })
        .where('saga_id', '=', params.sagaId),
    )
    .with('order_changed', (qc) =>
      qc
        .updateTable('orders')
        .set({ status: params.orderStatus, reason: params.reason, updated_at: sql<Date>`clock_timestamp()` })
        .where('order_id', '=', params.orderId),
    )
    .insertInto('saga_history')
    .columns(historyColumns)
    .expression(historyRows(params));
}

/** An input that changes nothing is still recorded. */
function recordUnchanged(db: Kysely<OrderTables>, params: Transition) {
  return db.insertInto('saga_history').columns(historyColumns).expression(historyRows(params));
}
