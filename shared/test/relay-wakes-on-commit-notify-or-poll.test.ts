/**
 * Contract: the relay's three ways of learning about new rows each deliver on their own.
 * - in-process wake (default): a commit through the service's outbox is published at once;
 * - poll: with notifications off, a row inserted by another connection (plain SQL, nothing
 *   in the process is woken) is published by the poll alone;
 * - NOTIFY (OUTBOX_NOTIFY=true): a row inserted by another connection that sends pg_notify
 *   is published long before a (deliberately huge) poll interval would have come round;
 *   and a relay stopped early leaves no LISTEN session behind.
 */
import { describe, expect, test } from 'vitest';
import { ConfirmPublisher, createDatabase, OutboxRelay, type MessagingTables } from '../src/internal.ts';
import { waitFor } from '../src/testing/index.ts';
import { insertOutboxRows, messagingFixture, orderCreated, publishingService, silentLogger } from './support/harness.ts';

/** Long enough that a row delivered within DELIVERED_WITHIN_MS cannot have been found by a poll. */
const NEVER_POLLS_MS = '600000';
const DELIVERED_WITHIN_MS = 5_000;

const fixture = messagingFixture('relay_wakes');


/** Resolves with how long it took the event to reach the exchange. */
async function delivery(tap: { counts: Map<string, number> }, eventId: string, since: number): Promise<number> {
  await waitFor(() => tap.counts.has(eventId), { timeoutMs: DELIVERED_WITHIN_MS, intervalMs: 5, message: `event ${eventId} on the exchange` });
  return performance.now() - since;
}

describe('the relay', () => {
  test('publishes a row committed through the outbox at once, woken in-process (default)', async ({ onTestFinished }) => {
    const { context, tap, config } = await publishingService(fixture, { label: 'wake', env: { OUTBOX_POLL_INTERVAL_MS: NEVER_POLLS_MS } }, onTestFinished);
    expect(config.OUTBOX_NOTIFY).toBe(false);

    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event));
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });

  test('publishes a row inserted by another connection, without any wake, by polling alone', async ({ onTestFinished }) => {
    const { tap, config } = await publishingService(fixture, { label: 'poll', env: { OUTBOX_POLL_INTERVAL_MS: '50', OUTBOX_NOTIFY: 'false' } }, onTestFinished);
    expect(config.OUTBOX_POLL_INTERVAL_MS).toBe(50);

    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await insertOutboxRows(fixture.pool, [event]);
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });

  test('with OUTBOX_NOTIFY, publishes a row inserted and notified by another connection long before the poll', async ({ onTestFinished }) => {
    const { tap, config } = await publishingService(fixture, { label: 'notify', env: { OUTBOX_POLL_INTERVAL_MS: NEVER_POLLS_MS, OUTBOX_NOTIFY: 'true' } }, onTestFinished);
    expect(config.OUTBOX_NOTIFY).toBe(true);
    await waitFor(
      async () => (await fixture.pool.query("select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen %'")).rowCount === 1,
      { message: 'the relay to LISTEN' },
    );

    // Every wake the relay gives itself (start, broker attach, LISTEN established) happened before the first
    // round was delivered, and the poll is minutes away: from then on only a notification can wake it.
    for (let round = 0; round < 3; round++) {
      const event = orderCreated();
      const started = performance.now();
      await insertOutboxRows(fixture.pool, [event], { notify: true });
      expect(await delivery(tap, event.eventId, started)).toBeLessThan(DELIVERED_WITHIN_MS);
    }
  });

  test('stopped while its LISTEN connection is still opening, leaves no session behind', async ({ onTestFinished }) => {
    const kit = createDatabase<MessagingTables>(fixture.database.url, 2);
    onTestFinished(() => kit.close());
    for (let round = 0; round < 3; round++) {
      // No broker: each drain returns at once, so stop() comes before the listener has connected.
      const relay = new OutboxRelay({ db: kit.db, publisher: new ConfirmPublisher(1000), exchange: 'unused', batchSize: 10, pollIntervalMs: 50, logger: silentLogger, listenUrl: fixture.database.url });
      relay.start();
      await relay.stop();
    }
    // stop() has resolved: a listener still connected now would stay open for good.
    await waitFor(async () => (await fixture.pool.query("select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen %'")).rowCount === 0, {
      timeoutMs: 5_000,
      message: 'every LISTEN session to end',
    });
  });
});
