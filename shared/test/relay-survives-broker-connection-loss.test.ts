/**
 * Contract: a relay whose broker connection is cut while a batch waits for its confirms
 * marks none of the unconfirmed rows published; once the link is back, amqplib's
 * recovery reconnects and every row is published (at least once: a row may go out
 * twice on the wire, but no row is lost and every row ends with published_at set).
 */
import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Broker, ConfirmPublisher, createDatabase, declareTopology, OutboxRelay, type MessagingTables, type OutboundMessage, type PublishOutcome } from '../src/internal.ts';
import { deleteTopology, startTcpProxy, testNames, testServers, waitFor, type TcpProxy, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, insertOutboxRows, orderCreatedEvents, outboxCounts, silentLogger, tapExchange, testPool, type Tap } from './support/harness.ts';

const ROWS = 3000;
const BATCH = 250;
/** The batch during whose publishing the link is cut (two batches are confirmed before it). */
const CUT_DURING_BATCH = 3;

/**
 * The kit's publisher with a saboteur: during batch N it cuts the link. `beforeConfirms`
 * cuts right after the batch is handed to the channel, before a byte of it can reach the
 * broker; `afterRouting` slows the link, waits until the broker has routed the whole batch
 * (the tap sees it) and cuts while the confirms are still on their way back.
 */
class SabotagedPublisher extends ConfirmPublisher {
  batches = 0;
  cutBatch: string[] = [];
  constructor(
    private readonly when: 'beforeConfirms' | 'afterRouting',
    private readonly tap: Tap,
  ) {
    super(5000);
  }
  override async publishAll(messages: readonly OutboundMessage[]): Promise<PublishOutcome[]> {
    if (++this.batches !== CUT_DURING_BATCH) return super.publishAll(messages);
    this.cutBatch = messages.map((message) => message.options.messageId);
    if (this.when === 'beforeConfirms') {
      const outcomes = super.publishAll(messages);
      proxy.cut();
      return outcomes;
    }
    proxy.setLatency(500);
    const outcomes = super.publishAll(messages);
    await waitFor(() => this.cutBatch.every((id) => this.tap.counts.has(id)), { intervalMs: 5, message: 'the broker to route the batch' });
    proxy.cut();
    proxy.setLatency(0);
    return outcomes;
  }
}

const cleanup = new Cleanup();
let servers: TestServers;
let proxy: TcpProxy;
let pool: pg.Pool;
let databaseUrl: string;

beforeAll(async () => {
  servers = await testServers();
  const database = await createMessagingDatabase('relay_link_cut');
  cleanup.defer(() => database.drop());
  databaseUrl = database.url;
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  const target = new URL(servers.amqpUrl);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  cleanup.defer(() => proxy.close());
});

afterAll(() => cleanup.run());

/** A relay wired exactly as startService wires it, but connected to the broker through the proxy; stopped when the test ends. */
async function startRelayThroughProxy(when: 'beforeConfirms' | 'afterRouting', onTestFinished: (step: () => Promise<void>) => void) {
  proxy.restore();
  const exchange = testNames('relay-cut').exchange;
  const tap = await tapExchange(servers.amqpUrl, exchange);
  const database = createDatabase<MessagingTables>(databaseUrl, 4);
  const publisher = new SabotagedPublisher(when, tap);
  const relay = new OutboxRelay({ db: database.db, publisher, exchange, batchSize: BATCH, pollIntervalMs: 100, logger: silentLogger });
  const broker = await Broker.connect(proxy.url(servers.amqpUrl), { logger: silentLogger, topology: (connection) => declareTopology(connection, exchange) });
  await broker.add({
    attach: async (connection) => {
      await publisher.attach(connection);
      relay.wake();
    },
    detach: () => publisher.detach(),
  });
  onTestFinished(async () => {
    proxy.restore();
    await relay.stop();
    await broker.close();
    await database.close();
    await tap.close();
    await deleteTopology(servers.amqpUrl, { exchange });
  });
  return { tap, publisher, relay, broker };
}

async function failedRows() {
  const { rows } = await pool.query<{ event_id: string; published_at: Date | null; last_error: string }>('select event_id, published_at, last_error from outbox where last_error is not null');
  return rows;
}

test('a link cut before a batch is confirmed leaves the batch unpublished, and after recovery every row is published', async ({ onTestFinished }) => {
  await pool.query('truncate outbox');
  const events = orderCreatedEvents(ROWS);
  await insertOutboxRows(pool, events);
  const { tap, publisher, relay, broker } = await startRelayThroughProxy('beforeConfirms', onTestFinished);
  relay.start();

  // The batch in flight fails as a whole and is recorded as such.
  const failed = await waitFor(async () => { const rows = await failedRows(); return rows.length > 0 && rows; }, { message: 'the batch cut in flight to be recorded as not confirmed' });
  expect(broker.isConnected).toBe(false);
  expect(failed.map((row) => row.event_id).sort()).toEqual([...publisher.cutBatch].sort());
  for (const row of failed) {
    expect(row.published_at).toBeNull();
    expect(row.last_error).toMatch(/channel closed|connection lost/);
  }

  // While the link is down, what is marked published is exactly what the broker confirmed: the batches before the cut, all on the exchange.
  const whileCut = await outboxCounts(pool);
  expect(whileCut.published).toBe((CUT_DURING_BATCH - 1) * BATCH);
  const { rows: publishedRows } = await pool.query<{ event_id: string }>('select event_id from outbox where published_at is not null');
  await waitFor(() => publishedRows.every((row) => tap.counts.has(row.event_id)), { message: 'every row marked published to have reached the exchange' });

  proxy.restore();
  await waitFor(async () => (await outboxCounts(pool)).published === ROWS, { message: `all ${ROWS} rows published after recovery` });
  await waitFor(() => tap.distinct === ROWS, { message: `all ${ROWS} events on the exchange` });

  expect(broker.isConnected).toBe(true);
  expect(publisher.batches).toBeGreaterThan(CUT_DURING_BATCH);
  expect(await outboxCounts(pool)).toMatchObject({ total: ROWS, published: ROWS, unpublished: 0 });
  for (const event of events) expect(tap.counts.get(event.eventId) ?? 0, event.eventId).toBeGreaterThanOrEqual(1);
});

test('a link cut after the broker routed a batch but before its confirms arrived republishes that batch: duplicates on the wire, nothing lost', async ({ onTestFinished }) => {
  await pool.query('truncate outbox');
  const events = orderCreatedEvents(ROWS);
  await insertOutboxRows(pool, events);
  const { tap, publisher, relay } = await startRelayThroughProxy('afterRouting', onTestFinished);
  relay.start();

  const failed = await waitFor(async () => { const rows = await failedRows(); return rows.length > 0 && rows; }, { message: 'the batch cut in flight to be recorded as not confirmed' });
  // Routed, but never confirmed to the relay: the rows stay unpublished.
  expect(failed.map((row) => row.event_id).sort()).toEqual([...publisher.cutBatch].sort());
  for (const row of failed) expect(row.published_at).toBeNull();
  for (const id of publisher.cutBatch) expect(tap.counts.get(id)).toBe(1);

  proxy.restore();
  await waitFor(async () => (await outboxCounts(pool)).published === ROWS, { message: `all ${ROWS} rows published after recovery` });
  await waitFor(() => publisher.cutBatch.every((id) => tap.counts.get(id) === 2), { message: 'the unconfirmed batch to go out a second time' });

  expect(await outboxCounts(pool)).toMatchObject({ total: ROWS, published: ROWS, unpublished: 0 });
  const cut = new Set(publisher.cutBatch);
  for (const event of events) expect(tap.counts.get(event.eventId), event.eventId).toBe(cut.has(event.eventId) ? 2 : 1);
});
