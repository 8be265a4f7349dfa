/**
 * Contract: a message the broker returns as unroutable (no queue bound to its routing
 * key) is not "published": its row stays unpublished with the reason in last_error and is
 * retried until a queue is bound. Such a row does not hold back the rows behind it, not even
 * when a whole batch of them is at the head of the outbox, and each is counted in a metric.
 */
import { v7 } from 'uuid';
import { describe, expect, test } from 'vitest';
import { newEvent } from '../src/internal.ts';
import { waitFor } from '../src/testing/index.ts';
import { insertOutboxRows, messagingFixture, metricValue, orderCreatedEvents, outboxCounts, publishingService } from './support/harness.ts';

const fixture = messagingFixture('relay_unroutable');


function paymentFailed() {
  return newEvent('PaymentFailed', { sagaId: v7(), orderId: v7() }, { reason: 'declined', amountMinor: 50, currency: 'EUR' });
}

describe('an unroutable message', () => {
  test('keeps its row unpublished with last_error naming it unroutable, and is published once a queue is bound', async ({ onTestFinished }) => {
    const { context, tap } = await publishingService(fixture, { label: 'unroutable', env: { OUTBOX_POLL_INTERVAL_MS: '100' }, patterns: [] }, onTestFinished);
    const [event] = orderCreatedEvents(1);
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event!));

    const row = await waitFor(
      async () => {
        const { rows } = await fixture.pool.query<{ published_at: Date | null; attempts: number; last_error: string | null }>('select published_at, attempts, last_error from outbox where event_id = $1', [event!.eventId]);
        return rows[0]?.last_error ? rows[0] : undefined;
      },
      { message: 'the publish to be recorded as failed' },
    );
    expect(row.published_at).toBeNull();
    expect(row.attempts).toBeGreaterThanOrEqual(1);
    expect(row.last_error).toMatch(/unroutable/);
    expect(row.last_error).toContain('order.created');

    await tap.bind('order.created');
    await waitFor(async () => (await outboxCounts(fixture.pool)).published === 1, { message: 'the row published by a later retry' });
    await waitFor(() => tap.counts.get(event!.eventId) === 1, { message: 'the event in the newly bound queue' });
  });

  test('does not hold back the routable rows behind it', async ({ onTestFinished }) => {
    // Batches of 20 and no poll worth the name: only the one commit wakes the relay.
    const { context, tap } = await publishingService(fixture, { label: 'unroutable-head', env: { OUTBOX_BATCH_SIZE: '20', OUTBOX_POLL_INTERVAL_MS: '600000' }, patterns: [] }, onTestFinished);
    await tap.bind('order.created');
    const poison = paymentFailed();
    const routable = orderCreatedEvents(100);
    await context.outbox.transaction((trx) => context.outbox.enqueue(trx, [poison, ...routable]));

    await waitFor(() => tap.distinct === routable.length, { timeoutMs: 5_000, message: 'every routable event on the exchange after one wake' });
    // Routed before confirmed, confirmed before marked: the last batch may still be on its way to the table.
    await waitFor(async () => (await outboxCounts(fixture.pool)).published === routable.length, { timeoutMs: 5_000, message: 'every routable row marked published' });
    expect(await outboxCounts(fixture.pool)).toMatchObject({ total: routable.length + 1, published: routable.length, unpublished: 1 });
    const { rows } = await fixture.pool.query<{ last_error: string }>('select last_error from outbox where published_at is null');
    expect(rows).toEqual([{ last_error: expect.stringMatching(/unroutable: no queue is bound to payment\.failed/) }]);
  });

  test('a whole batch of them at the head of the outbox does not hold back the routable rows behind it, and each is counted', async ({ onTestFinished }) => {
    // One drain lane (pool of 3), batches of 5 and no poll worth the name: only the one wake below drains.
    const { service, tap } = await publishingService(
      fixture,
      { label: 'unroutable-batch', env: { OUTBOX_BATCH_SIZE: '5', OUTBOX_POLL_INTERVAL_MS: '600000' }, patterns: [] },
      onTestFinished,
    );
    await tap.bind('order.created');
    const poison = Array.from({ length: 10 }, () => paymentFailed());
    const routable = orderCreatedEvents(12);
    // Written by plain SQL, as another process would: the table drain is the only way out for these rows.
    await insertOutboxRows(fixture.pool, [...poison, ...routable]);
    service.relay.wake();

    await waitFor(() => tap.distinct === routable.length, { timeoutMs: 5_000, message: 'every routable event on the exchange after one wake' });
    await waitFor(async () => (await outboxCounts(fixture.pool)).published === routable.length, { timeoutMs: 5_000, message: 'every routable row marked published' });
    const { rows } = await fixture.pool.query<{ event_id: string; last_error: string; attempts: number }>('select event_id, last_error, attempts from outbox where published_at is null order by id');
    expect(rows.map(({ event_id, last_error }) => ({ event_id, last_error }))).toEqual(poison.map((event) => ({ event_id: event.eventId, last_error: 'unroutable: no queue is bound to payment.failed' })));
    // The metric counts publishes the broker returned, and every drain tries the kept rows again: the service's
    // start-up drain may meet these rows before the wake does. Each return is one attempt on its row.
    // A drain still on its way has counted its returns before committing their attempts: compare once both agree.
    expect(rows.every((row) => row.attempts >= 1)).toBe(true);
    await waitFor(
      async () => {
        const { rows: [kept] } = await fixture.pool.query<{ attempts: number }>('select sum(attempts)::int as attempts from outbox where published_at is null');
        return (await metricValue(service.url, 'outbox_unroutable_total', { routing_key: 'payment.failed' })) === kept!.attempts;
      },
      { timeoutMs: 5_000, message: 'outbox_unroutable_total{payment.failed} equal to the attempts recorded on the kept rows' },
    );
    expect(await metricValue(service.url, 'outbox_unroutable_total', { routing_key: 'order.created' })).toBe(0);
  });
});
