/**
 * Scenario 9: 300 orders queued behind a slow payment gateway (PAYMENT_PROCESSING_MS 2000,
 * payment's pool of 10 connections). Payment's charge handler waits inside its transaction,
 * so unbounded it would run up to a prefetch window of charges at once, take every
 * connection and starve the rest of the process. With the backlog in place, for as long as
 * it takes a few dozen orders to end: payment's /ready answers 200 every time, its relay
 * keeps publishing (orders end while the backlog is still there), POST /orders takes every
 * order without a failed attempt, and no message is retried for lack of a connection.
 * The backlog itself is not waited out (at 2 s a charge it takes minutes).
 */
import { sql } from 'kysely';
import { expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import { runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';

const ORDERS = 300;
const ENDED_WHILE_BACKLOGGED = 30;

/** The sum of payment's messages_total samples with this outcome. */
async function paymentOutcome(url: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('messages_total{') && line.includes(`outcome="${outcome}"`))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

test('300 orders behind a slow payment: payment stays ready, its relay publishes, orders are accepted, nothing is retried for lack of a connection', async () => {
  await runScenario(
    'slow-payment',
    { payment: { PAYMENT_PROCESSING_MS: '2000', DATABASE_POOL_SIZE: '10' }, order: { SAGA_TIMEOUT_MS: '600000' } },
    async (system, events) => {
      const payment = system.services.payment;
      const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: 100, seed: 9, label: 'slow-payment' });
      await stream.waitAccepted(ORDERS, 60_000);
      events.mark(`${ORDERS} orders accepted`);

      const readiness: (number | string)[] = [];
      let pending = 0;
      await waitFor(
        async () => {
          readiness.push(await fetch(`${payment.url}/ready`, { signal: AbortSignal.timeout(15_000) }).then((response) => response.status, (error: Error) => error.name));
          const { rows } = await sql<{ pending: number }>`select count(*)::int as pending from orders where status = 'PENDING'`.execute(system.orderDb);
          pending = rows[0]!.pending;
          return ORDERS - pending >= ENDED_WHILE_BACKLOGGED;
        },
        { timeoutMs: 120_000, intervalMs: 500, message: `${ENDED_WHILE_BACKLOGGED} orders ended behind the slow payment` },
      );
      events.mark(`${ORDERS - pending} orders ended, ${pending} still pending; payment's /ready probed ${readiness.length} times`);
      expect(pending, 'orders still pending when the checks ended (they were made under the backlog)').toBeGreaterThan(ORDERS / 2);
      expect(readiness.filter((status) => status !== 200), "payment's /ready answers other than 200 under the backlog").toEqual([]);
      expect(stream.failedAttempts(), 'failed POST /orders attempts').toBe(0);
      expect(await paymentOutcome(payment.url, 'retried'), 'payment messages retried (for lack of a connection: the handler never fails here)').toBe(0);
      expect(payment.output(), "payment's output").not.toMatch(/timeout exceeded when trying to connect/);
    },
  );
});
