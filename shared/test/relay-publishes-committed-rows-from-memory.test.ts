/**
 * Contract: rows committed through a service's outbox are claimed by that process and
 * published by its relay straight from memory.
 * - they reach the exchange and end up published, their claim cleared;
 * - a claim keeps every relay's table drain off a row until it runs out (the process that
 *   committed it died before publishing): then the drain publishes it, and not before;
 * - stopping the service leaves no row claimed or unpublished.
 */
import { describe, expect, test } from 'vitest';
import { waitFor } from '../src/testing/index.ts';
import { insertOutboxRows, messagingFixture, orderCreatedEvents, outboxCounts, publishingService } from './support/harness.ts';

const fixture = messagingFixture('relay_direct');

interface RowState {
  published_at: Date | null;
  claimed_until: Date | null;
  attempts: number;
}

async function rowsOf(eventIds: readonly string[]): Promise<RowState[]> {
  const { rows } = await fixture.pool.query<RowState>('select published_at, claimed_until, attempts from outbox where event_id = any($1::uuid[]) order by id', [eventIds]);
  return rows;
}

describe('rows committed through the outbox', () => {
  test('are claimed in the transaction, published from memory, and marked published with the claim cleared', async ({ onTestFinished }) => {
    // The poll is minutes away: only the direct path can publish within the test.
    const { context, tap } = await publishingService(fixture, { label: 'direct', env: { OUTBOX_POLL_INTERVAL_MS: '600000', OUTBOX_CLAIM_MS: '600000' } }, onTestFinished);
    const events = orderCreatedEvents(50);

    let claimedInTransaction: RowState[] = [];
    await context.outbox.transaction(async (trx) => {
      await context.outbox.enqueue(trx, events);
      claimedInTransaction = (
        await trx.selectFrom('outbox').select(['published_at', 'claimed_until', 'attempts']).where('event_id', 'in', events.map((event) => event.eventId)).execute()
      ).map((row) => ({ ...row, attempts: Number(row.attempts) }));
    });
    expect(claimedInTransaction).toHaveLength(events.length);
    expect(claimedInTransaction.every((row) => row.claimed_until !== null && row.published_at === null)).toBe(true);

    await waitFor(() => tap.distinct === events.length, { message: 'every event on the exchange' });
    const rows = await waitFor(
      async () => {
        const current = await rowsOf(events.map((event) => event.eventId));
        return current.every((row) => row.published_at !== null) ? current : undefined;
      },
      { message: 'every row marked published' },
    );
    expect(rows.every((row) => row.claimed_until === null && row.attempts === 0)).toBe(true);
    expect([...tap.counts.values()].every((count) => count === 1)).toBe(true);
  });

  test("a claim keeps the table drain off a row until it runs out, then the drain publishes it", async ({ onTestFinished }) => {
    const { tap } = await publishingService(fixture, { label: 'claim', env: { OUTBOX_POLL_INTERVAL_MS: '20' } }, onTestFinished);
    // The rows of a process that committed and died before publishing: claimed for a while longer.
    const [claimed, free] = orderCreatedEvents(2);
    await fixture.pool.query(
      "insert into outbox (event_id, routing_key, envelope, claimed_until) values ($1, 'order.created', $2, clock_timestamp() + interval '1500 milliseconds')",
      [claimed!.eventId, JSON.stringify(claimed)],
    );
    await insertOutboxRows(fixture.pool, [free!]);

    await waitFor(() => tap.counts.has(free!.eventId), { message: 'the unclaimed row published by the poll' });
    await waitFor(() => tap.counts.has(claimed!.eventId), { timeoutMs: 10_000, message: 'the claimed row published once its claim ran out' });
    const { rows } = await fixture.pool.query<{ published_at: Date; claimed_until: Date | null; expired: boolean }>(
      "select published_at, claimed_until, published_at >= created_at + interval '1400 milliseconds' as expired from outbox where event_id = $1",
      [claimed!.eventId],
    );
    // Not a moment before its claim ran out (the row's own clock: created, claimed 1.5 s, published).
    expect(rows[0]?.expired).toBe(true);
  });

  test('a stopped service leaves no row claimed or unpublished', async ({ onTestFinished }) => {
    const { context, service } = await publishingService(fixture, { label: 'stop', env: { OUTBOX_POLL_INTERVAL_MS: '600000', OUTBOX_CLAIM_MS: '600000' } }, onTestFinished);
    const events = orderCreatedEvents(200);
    await Promise.all(
      Array.from({ length: 20 }, (_, index) => context.outbox.transaction((trx) => context.outbox.enqueue(trx, events.slice(index * 10, index * 10 + 10)))),
    );
    await service.stop();

    expect(await outboxCounts(fixture.pool)).toMatchObject({ total: events.length, published: events.length, unpublished: 0 });
    const { rows } = await fixture.pool.query<{ claimed: number }>('select count(*)::int as claimed from outbox where claimed_until is not null');
    expect(rows[0]?.claimed).toBe(0);
  });
});
