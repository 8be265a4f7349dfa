/**
 * Property: the order intake, which accepts requests arriving together in one transaction
 * (accept-together.ts under the kit's GroupCommit), gives exactly what the plain path gives,
 * acceptOrder taking the same requests one by one, in order. For any sequence of valid,
 * invalid and Idempotency-Key-reusing POST /orders, both answer the same (status, body,
 * headers) and leave the same rows: orders, sagas, history, idempotency keys and outbox events,
 * once the ids and times each run makes up are replaced by which request made them.
 * fast-check prints the seed of a failing run; `fc.assert(..., { seed, path })` replays it.
 */
import { createDatabase, createHttpApp, createLogger, migrateDatabase, Outbox, type Database, type ServiceContext } from '@checkout-saga/shared/internal';
import { createTestDatabase, type TestDatabase } from '@checkout-saga/shared/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { v7 } from 'uuid';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { OrderTables } from '../src/db.ts';
import { orderRoutes, type Intake } from '../src/http/orders.ts';
import { acceptOrder } from '../src/orders/accept.ts';
import { orderIntake } from '../src/orders/order-intake.ts';
import type { OrderConfig } from '../src/settings.ts';

const SAGA_TIMEOUT_MS = 60_000;
const RUNS = 40;

interface Side {
  database: TestDatabase;
  handle: Database<OrderTables>;
  post(request: Post): Promise<Answer>;
  stop(): Promise<void>;
}

interface Post {
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

let plain: Side;
let together: Side;
/** The size of every transaction of the intake that accepts together. */
const groups: number[] = [];

async function side(label: string, intakeOf: (outbox: Outbox<OrderTables>) => Intake & { stop?(): Promise<void> }): Promise<Side> {
  const database = await createTestDatabase(label);
  await migrateDatabase({ databaseUrl: database.url, service: 'order' });
  const handle = createDatabase<OrderTables>(database.url, 4);
  const outbox = new Outbox<OrderTables>(handle.db, { onCommit: () => {}, notify: false });
  const intake = intakeOf(outbox);
  const app = createHttpApp(createLogger('order', 'silent'));
  orderRoutes(app, { db: handle.db } as ServiceContext<OrderTables, OrderConfig>, intake);
  await app.ready();
  return {
    database,
    handle,
    post: async ({ body, headers }) => {
      const response = await app.inject({ method: 'POST', url: '/orders', payload: body, headers });
      return { status: response.statusCode, body: response.json(), headers: { location: response.headers.location, replayed: response.headers['idempotent-replayed'] } };
    },
    stop: async () => {
      await intake.stop?.();
      await app.close();
      await handle.close();
      await database.drop();
    },
  };
}

beforeAll(async () => {
  plain = await side('intake_plain', (outbox) => ({ submit: (request) => acceptOrder(outbox, request, SAGA_TIMEOUT_MS) }));
  together = await side('intake_together', (outbox) => orderIntake({ outbox, sagaTimeoutMs: SAGA_TIMEOUT_MS, maxBatch: 8, batchSizes: { observe: (size) => groups.push(size) } }));
});

afterAll(async () => {
  await plain?.stop();
  await together?.stop();
});

const TRACE_IDS = ['4bf92f3577b34da6a3ce929d0e0e4736', '0af7651916cd43dd8448eb211c80319c'];

/** Few bodies and few keys, so that keys are reused with the same body and with another. */
const validBody = fc.record({
  customerEmail: fc.constantFrom('ada@example.com', 'grace@example.com'),
  items: fc.constantFrom([{ sku: 'SKU-1', qty: 1 }], [{ sku: 'SKU-2', qty: 3 }, { sku: 'SKU-1', qty: 1 }]),
  amount: fc.constantFrom('12.50', 12.5, '99.99'),
  currency: fc.constantFrom('EUR', 'USD'),
});
const invalidBody = fc.constantFrom<Record<string, unknown>>(
  { customerEmail: 'ada@example.com', items: [{ sku: 'SKU-1', qty: 1 }], amount: '12.345' },
  { customerEmail: 'not an address', items: [{ sku: 'SKU-1', qty: 1 }], amount: '1.00' },
  { customerEmail: 'ada@example.com', items: [], amount: '1.00' },
);
const post = fc.record({
  body: fc.oneof({ weight: 4, arbitrary: validBody }, { weight: 1, arbitrary: invalidBody }),
  key: fc.option(fc.constantFrom('key-a', 'key-b', 'key-c'), { freq: 2 }),
  trace: fc.option(fc.constantFrom(...TRACE_IDS), { freq: 2 }),
});
type Generated = { body: Record<string, unknown>; key: string | null; trace: string | null };

/** Keys of their own for each run, so that runs never meet in the idempotency_keys table. */
function posts(sequence: readonly Generated[]): Post[] {
  const run = v7();
  return sequence.map(({ body, key, trace }) => ({
    body,
    headers: { ...(key ? { 'idempotency-key': `${run}-${key}` } : {}), ...(trace ? { traceparent: `00-${trace}-00f067aa0ba902b7-01` } : {}) },
  }));
}

/** Ids and times replaced by the index of the request that made them; a made-up trace by "fresh". */
function normaliser(answers: readonly Answer[]) {
  const made = new Map<string, string>();
  answers.forEach((answer, index) => {
    if (answer.status === 202 && !answer.headers.replayed) {
      made.set(answer.body.orderId as string, `order of request ${index}`);
      made.set(answer.body.sagaId as string, `saga of request ${index}`);
    }
  });
  const text = (value: string) => {
    let out = value;
    for (const [id, name] of made) out = out.replaceAll(id, name);
    return out;
  };
  return (value: unknown): unknown => JSON.parse(text(JSON.stringify(value)));
}

async function written(db: Database<OrderTables>['db']) {
  const { rows } = await sql<Record<string, unknown>>`
    select o.order_id, o.customer_id, o.customer_email, o.items, o.amount_minor, o.currency, o.status, o.reason,
           s.saga_id, s.state, round(extract(epoch from s.timeout_at - s.created_at))::int as deadline_s,
           (select json_agg(json_build_object('type', h.type, 'from', h.from_state, 'to', h.to_state) order by h.id) from saga_history h where h.saga_id = s.saga_id) as history,
           (select json_agg(json_build_object('key', k.key, 'hash', k.request_hash, 'status', k.status_code, 'response', k.response::text)) from idempotency_keys k where k.order_id = o.order_id) as keys,
           (select json_agg(json_build_object('routingKey', x.routing_key, 'type', x.envelope->'type', 'orderId', x.envelope->'orderId', 'sagaId', x.envelope->'sagaId',
                                              'payload', x.envelope->'payload', 'trace', split_part(x.headers->>'traceparent', '-', 2)))
              from outbox x where x.envelope->>'sagaId' = s.saga_id::text) as outbox
    from orders o join sagas s on s.order_id = o.order_id`.execute(db);
  return rows.map((row) => ({
    ...row,
    outbox: (row.outbox as { trace: string }[]).map((event) => ({ ...event, trace: TRACE_IDS.includes(event.trace) ? event.trace : /^[0-9a-f]{32}$/.test(event.trace) ? 'fresh' : event.trace })),
  }));
}

async function emptied(handle: Database<OrderTables>): Promise<void> {
  await sql`truncate orders, sagas, saga_history, idempotency_keys, outbox`.execute(handle.db);
}

test('accepting requests together answers and writes exactly as accepting them one by one', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(post, { minLength: 1, maxLength: 24 }), async (sequence) => {
      await Promise.all([emptied(plain.handle), emptied(together.handle)]);
      const requests = posts(sequence);

      const oneByOne: Answer[] = [];
      for (const request of requests) oneByOne.push(await plain.post(request));
      // All in one tick: the first gets a transaction at once, the rest are accepted together behind it.
      const allAtOnce = await Promise.all(requests.map((request) => together.post(request)));

      const plainView = normaliser(oneByOne);
      const togetherView = normaliser(allAtOnce);
      expect(togetherView(allAtOnce)).toEqual(plainView(oneByOne));
      const byOrder = (rows: unknown) => (rows as { order_id: string }[]).sort((a, b) => a.order_id.localeCompare(b.order_id));
      expect(byOrder(togetherView(await written(together.handle.db)))).toEqual(byOrder(plainView(await written(plain.handle.db))));
    }),
    { numRuns: RUNS },
  );
  // Not vacuous: requests did go together, up to maxBatch.
  expect(Math.max(...groups)).toBe(8);
});
