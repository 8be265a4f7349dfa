/**
 * Scenario 7: poison mid-stream, published straight to the exchange:
 * - a PaymentCompleted for a saga the order service never created (for an order inventory
 *   has already settled, so inventory rightly does nothing): order dead-letters it at once;
 * - an OrderConfirmed whose customer's mailbox refuses every message (550): notification
 *   retries it through the whole schedule, then dead-letters it (inventory, which also
 *   takes order.confirmed, finds no reservation and does nothing);
 * - a body that is not JSON under order.created: payment dead-letters it at once.
 * Each ends in the right service's dead-letter queue with its reason header, nothing else
 * does, and the good orders around them are not delayed beyond the retry schedule: their
 * p95 end-to-end latency stays within a calm baseline's p95 plus the sum of retry delays.
 * The baseline is taken before and after the poison stream (the larger p95 counts), at a
 * rate that leaves the services headroom, so load from outside the test that changes during
 * the run is not mistaken for a delay caused by the poison.
 */
import amqp from 'amqplib';
import { expect, test } from 'vitest';
import { v7 } from 'uuid';
import { newEvent, routingKeyOf, type Envelope } from '@checkout-saga/shared/internal';
import { publishEnvelopes } from '@checkout-saga/shared/testing';
import { runScenario } from './support/scenario.ts';
import { startSelectiveSmtp } from './support/smtp.ts';
import { startStream } from './support/stream.ts';
import { maxDeliveryAttempts, retrySchedule } from './support/system.ts';
import { expectClean, judge, latenciesOf, percentile, settle } from './support/verdict.ts';

const BASELINE_ORDERS = 60;
const ORDERS = 120;
const RATE = 8;
const POISON_MAILBOX = 'poison@faults.test';

test('poison and invalid messages mid-stream end in the right dead-letter queue with their reason; good orders are not delayed beyond the retry schedule', async () => {
  const smtp = await startSelectiveSmtp((recipient) => recipient === POISON_MAILBOX);
  try {
    await runScenario('poison', { notification: { SMTP_URL: smtp.url, SMTP_TIMEOUT_MS: '5000' } }, async (system, events) => {
      // A calm stream at the same rate, settled before (and again after) the poison stream: the baseline.
      const calm = async (seed: number, label: string) => {
        const baseline = startStream(system.orderUrl, { count: BASELINE_ORDERS, ratePerSecond: RATE, seed, label });
        expect(await settle(system, [baseline], 60_000), `the calm ${label} settles`).toBe(true);
        const ids = baseline.orders.map((order) => order.orderId!).filter(Boolean);
        const rows = await system.orderDb.selectFrom('orders').select(['order_id', 'status', 'created_at', 'updated_at']).where('order_id', 'in', ids).execute();
        const p95 = percentile(rows.map((row) => row.updated_at.getTime() - row.created_at.getTime()), 95);
        events.mark(`${label} of ${rows.length} settled, p95 ${p95} ms`);
        return { stream: baseline, rows, p95 };
      };
      const before = await calm(70, 'baseline-before');
      const settledOrder = before.rows.find((row) => row.status === 'CONFIRMED');
      expect(settledOrder, 'a confirmed baseline order to aim the poison PaymentCompleted at').toBeDefined();

      const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 7, label: 'poison' });
      await stream.waitAccepted(30);

      // The poison, straight to the exchange as a relay would publish it.
      const unknownSaga = newEvent('PaymentCompleted', { sagaId: v7(), orderId: settledOrder!.order_id }, { paymentId: v7(), items: [{ sku: 'BULK-A', qty: 1 }], amountMinor: 1000, currency: 'USD' });
      const unmailable = newEvent('OrderConfirmed', { sagaId: v7(), orderId: v7() }, { customerEmail: POISON_MAILBOX, items: [{ sku: 'BULK-A', qty: 1 }], amountMinor: 1000, currency: 'USD' });
      const notJsonId = `not-json-${v7()}`;
      const connection = await amqp.connect(system.amqpUrl);
      try {
        const channel = await connection.createConfirmChannel();
        await publishEnvelopes(channel, system.exchange, [unknownSaga, unmailable] as Envelope[]);
        channel.publish(system.exchange, routingKeyOf('OrderCreated'), Buffer.from('{"eventId": "01a2006f-0000-7000-8000-00000000000'), {
          messageId: notJsonId,
          contentType: 'application/json',
          persistent: true,
        });
        await channel.waitForConfirms();
      } finally {
        await connection.close();
      }
      events.mark(`poison published (${stream.accepted()} accepted)`);

      // The poison has played out (retries done) before the second baseline starts.
      expect(await settle(system, [stream]), 'the poison stream settles').toBe(true);
      events.mark('poison stream settled');
      const after = await calm(71, 'baseline-after');

      const verdict = await judge(system, 'poison and invalid messages mid-stream', [before.stream, stream, after.stream], {
        deadLetters: [
          {
            service: 'order',
            what: 'PaymentCompleted for an unknown saga',
            messageId: unknownSaga.eventId,
            reason: /^UnknownSagaError: no saga /,
            handler: 'order.saga.payment-completed',
            attempt: 1,
          },
          {
            service: 'notification',
            what: 'OrderConfirmed to a mailbox that refuses mail',
            messageId: unmailable.eventId,
            reason: /550|refuses all mail|rejected/i,
            handler: 'notification.confirmed',
            attempt: maxDeliveryAttempts,
          },
          { service: 'payment', what: 'a body that is not JSON', messageId: notJsonId, routingKey: 'order.created', reason: /^body is not JSON/, handler: 'none', attempt: 1 },
        ],
      });
      expectClean(verdict);
      expect(smtp.refused().length, 'the poison mailbox was tried once per attempt').toBe(maxDeliveryAttempts);

      const streamIds = stream.orders.map((order) => order.orderId!).filter(Boolean);
      const p95 = percentile(latenciesOf(verdict, streamIds), 95);
      const baselineP95 = Math.max(before.p95, after.p95);
      const bound = baselineP95 + retrySchedule.reduce((sum, delay) => sum + delay, 0);
      console.log(
        `[faults poison] e2e p95: calm baseline ${before.p95} ms before, ${after.p95} ms after; around the poison ${p95} ms; ` +
          `bound ${bound} ms (baseline p95 + retry delays ${retrySchedule.join('+')} ms)`,
      );
      expect(p95, `good orders around the poison: p95 ${p95} ms exceeds the calm baseline's p95 ${baselineP95} ms + the retry schedule`).toBeLessThanOrEqual(bound);
    });
  } finally {
    await smtp.close();
  }
});
