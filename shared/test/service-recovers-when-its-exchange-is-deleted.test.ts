/**
 * Contract: an exchange deleted under a running service (an operator's mistake, a broker reset
 * by hand) stalls nothing for good. The broker closes the publishing channel at the first
 * publish to the missing exchange; with the connection itself still up, amqplib's recovery
 * never runs, so the kit declares the topology again and opens a new channel, and the rows
 * written meanwhile are published from the outbox, none lost.
 */
import amqp from 'amqplib';
import { expect, test } from 'vitest';
import { waitFor } from '../src/testing/index.ts';
import { messagingFixture, orderCreatedEvents, outboxCounts, publishingService } from './support/harness.ts';

const fixture = messagingFixture('exchange_deleted');

async function exchangeExists(amqpUrl: string, exchange: string): Promise<boolean> {
  const connection = await amqp.connect(amqpUrl);
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    return await channel.checkExchange(exchange).then(
      () => true,
      () => false,
    );
  } finally {
    await connection.close().catch(() => {});
  }
}

test('the exchange deleted while the service runs: it is declared again and the rows written meanwhile are published', async ({ onTestFinished }) => {
  const { context, tap } = await publishingService(fixture, { label: 'exchange-deleted', env: { OUTBOX_POLL_INTERVAL_MS: '200' }, patterns: ['order.created'] }, onTestFinished);
  const exchange = context.config.ORDER_EXCHANGE;
  const [before, ...during] = orderCreatedEvents(4);
  await context.outbox.transaction((trx) => context.outbox.enqueue(trx, before!));
  await waitFor(() => tap.counts.get(before!.eventId) === 1, { message: 'the first event published while the exchange exists' });

  const admin = await amqp.connect(fixture.servers.amqpUrl);
  onTestFinished(() => admin.close().catch(() => {}));
  await (await admin.createChannel()).deleteExchange(exchange);
  for (const event of during) await context.outbox.transaction((trx) => context.outbox.enqueue(trx, event));

  await waitFor(() => exchangeExists(fixture.servers.amqpUrl, exchange), { timeoutMs: 15_000, message: `the exchange ${exchange} declared again by the service` });
  await tap.bind('order.created'); // the tap's binding went with the old exchange
  await waitFor(() => during.every((event) => tap.counts.get(event.eventId) === 1), { timeoutMs: 15_000, message: 'every event written while the exchange was gone, on the exchange once' });
  await waitFor(async () => (await outboxCounts(fixture.pool)).published === 4, { message: 'every row marked published' });
  expect(tap.counts.get(before!.eventId)).toBe(1);
});
