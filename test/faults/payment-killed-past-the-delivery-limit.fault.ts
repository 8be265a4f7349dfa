/**
 * Scenario 10: payment is killed (-9) three times while it holds a backlog of OrderCreated in
 * hand (a slow gateway, PAYMENT_PROCESSING_MS 1000), with QUEUE_DELIVERY_LIMIT 2. Every message
 * it held all three times has then been handed out more often than the limit allows: the
 * broker moves it to payment's dead-letter queue (x-death reason delivery_limit), never
 * drops it. Its saga times out and is cancelled. In the end no OrderCreated is nowhere:
 * each one was either applied by payment or sits in payment's dead-letter queue, and the
 * system is otherwise clean (invariants, nothing stuck, no other dead letter).
 */
import { expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import amqp from 'amqplib';
import { runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { expectClean, judge, readDeadLetters } from './support/verdict.ts';

const ORDERS = 60;
const KILLS = 3;

test('payment killed three times while holding messages, delivery limit 2: the messages it held end in its dead-letter queue with reason delivery_limit, none is lost', async () => {
  await runScenario(
    'delivery-limit',
    { payment: { PAYMENT_PROCESSING_MS: '1000', QUEUE_DELIVERY_LIMIT: '2' }, order: { SAGA_TIMEOUT_MS: '8000', TIMEOUT_CHECK_INTERVAL_MS: '200' } },
    async (system, events) => {
      const payment = system.services.payment;
      const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: 30, seed: 10, label: 'delivery-limit' });
      await stream.waitAccepted(ORDERS);
      events.mark(`${ORDERS} orders accepted`);

      const connection = await amqp.connect(system.amqpUrl);
      try {
        const channel = await connection.createChannel();
        for (let kill = 1; kill <= KILLS; kill++) {
          // Payment holds every OrderCreated it has not finished: nothing is ready in its queue.
          await waitFor(async () => (await channel.checkQueue(system.queues('payment').main)).messageCount === 0, { message: `payment holding its backlog before kill ${kill}` });
          await payment.kill();
          events.mark(`payment killed (${kill})`);
          await payment.start();
          events.mark('payment back');
        }
      } finally {
        await connection.close().catch(() => {});
      }

      // No OrderCreated is nowhere: each is applied by payment's charge handler or in payment's dead-letter queue.
      // Waited for before the verdict, whose settling sees only messages ready in a queue, not those a process holds.
      const created = (await system.orderDb.selectFrom('outbox').select('event_id').where('routing_key', '=', 'order.created').execute()).map((row) => row.event_id);
      expect(created.length).toBe(ORDERS);
      let deadLettered = new Set<string>();
      let applied = new Set<string>();
      const nowhere = async () => {
        deadLettered = new Set((await readDeadLetters(system)).filter((letter) => letter.service === 'payment').map((letter) => letter.messageId));
        applied = new Set((await system.paymentDb.selectFrom('processed_events').select('event_id').where('handler', '=', 'payment.charge').execute()).map((row) => row.event_id));
        return created.filter((id) => !applied.has(id) && !deadLettered.has(id));
      };
      await waitFor(async () => (await nowhere()).length === 0, { timeoutMs: 90_000, intervalMs: 500, message: 'every OrderCreated applied by payment or in its dead-letter queue' }).catch(() => {});
      expect(await nowhere(), 'OrderCreated neither applied by payment nor in its dead-letter queue').toEqual([]);
      events.mark(`${deadLettered.size} OrderCreated dead-lettered, ${applied.size} applied`);
      expect(deadLettered.size, 'OrderCreated messages the broker dead-lettered past the delivery limit').toBeGreaterThan(0);

      const verdict = await judge(system, `payment killed ${KILLS} times holding messages, delivery limit 2`, [stream], {
        timeoutsAllowed: true,
        deadLettersAllowed: (letter) => letter.service === 'payment' && letter.type === 'OrderCreated' && /^broker: delivery_limit/.test(letter.reason),
        settleTimeoutMs: 120_000,
      });
      expectClean(verdict);
    },
  );
});
