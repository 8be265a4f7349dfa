import { newEvent, type Currency, type Envelope, type OrderLine } from '@checkout-saga/shared';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { OrderStatus, OrderTables } from '../db.ts';
import type { SagaAges } from './metrics.ts';
import { begin, decide, orderStatusOf, terminalStates, type Decision, type Emission, type SagaInput, type SagaSnapshot, type SagaState } from './decide.ts';

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

/** An Idempotency-Key to claim in the statement that starts the saga, with the response a retry replays. */
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
 * Writes new orders and their sagas (PAYMENT_PENDING, deadline timeoutMs from now by the
 * database clock) and records OrderCreated in each history. Returns, start by start, the
 * OrderCreated the caller must emit in the same transaction, or undefined where nothing was
 * written because the start's key was taken.
 *
 * It is one statement however many orders there are, each insert selecting from the one
 * before, so that a start with a claim is written only if its key was free: when the key is
 * taken (or was taken by a concurrent request this statement waited for, or by an earlier
 * start of this same list), nothing of that start is written.
 */
export async function startSagas(trx: Trx, starts: readonly SagaStart[], timeoutMs: number): Promise<(Envelope | undefined)[]> {
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
