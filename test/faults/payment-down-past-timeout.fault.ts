/**
 * Scenario 8: payment is down longer than SAGA_TIMEOUT_MS (3 s) while orders are placed
 * (stopped for 6 s). The sagas whose deadline passes while it is away are cancelled with
 * reason timeout; when payment comes back it works through their OrderCreated and
 * OrderCancelled, and nothing stays charged: each has no charge (SKIPPED, or FAILED for a
 * declined amount) or a refunded one.
 */
import { expect, test } from 'vitest';
import { hold, runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 200;
const RATE = 15;
const SAGA_TIMEOUT_MS = 3_000;
const DOWN_MS = 6_000;
/** The timeout checker runs every 200 ms; its claim and commit take a little more. */
const CHECKER_SLACK_MS = 500;

test('payment down longer than SAGA_TIMEOUT_MS: those sagas are cancelled (timeout) and, once payment is back, nothing stays charged', async () => {
  await runScenario('saga-timeout', { order: { SAGA_TIMEOUT_MS: String(SAGA_TIMEOUT_MS), TIMEOUT_CHECK_INTERVAL_MS: '200' } }, async (system, events) => {
    const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 8, label: 'timeout' });
    await stream.waitAccepted(30);
    const code = await system.services.payment.terminate();
    const downAt = Date.now();
    events.mark(`payment stopped, exit ${code} (${stream.accepted()} accepted)`);
    expect(code, 'payment exit code after SIGTERM').toBe(0);
    await hold(DOWN_MS); // the scenario: payment away for twice the saga timeout
    const midStream = stream.started() < ORDERS;
    const restartAt = Date.now();
    await system.services.payment.start();
    events.mark(`payment restarted (${stream.accepted()} accepted)`);

    const verdict = await judge(system, `payment down ${DOWN_MS / 1000} s > SAGA_TIMEOUT_MS ${SAGA_TIMEOUT_MS / 1000} s`, [stream], {
      timeoutsAllowed: true,
      findings: midStream ? [] : ['the stream had placed all its orders before payment came back: not mid-stream (make it longer)'],
    });
    expectClean(verdict);

    // Orders created while payment was away whose deadline passed before it came back must have timed out.
    const rows = await system.orderDb.selectFrom('orders').select(['order_id', 'status', 'reason', 'created_at']).execute();
    const mustTimeOut = rows.filter((row) => row.created_at.getTime() >= downAt && row.created_at.getTime() + SAGA_TIMEOUT_MS + CHECKER_SLACK_MS < restartAt);
    expect(mustTimeOut.length, 'orders placed while payment was down whose deadline passed before it returned').toBeGreaterThan(10);
    expect(
      mustTimeOut.filter((row) => row.reason !== 'timeout').map((row) => `${row.order_id} ${row.status} ${row.reason}`),
      'orders that outlived SAGA_TIMEOUT_MS without payment but did not end CANCELLED(timeout)',
    ).toEqual([]);

    // Every timed-out order: payment has a record of it (it consumed both events) and nothing charged is left.
    const timedOut = rows.filter((row) => row.reason === 'timeout').map((row) => row.order_id);
    const payments = new Map((await system.paymentDb.selectFrom('payments').select(['order_id', 'status']).where('order_id', 'in', timedOut).execute()).map((row) => [row.order_id, row.status]));
    const charged = timedOut.filter((id) => !['SKIPPED', 'REFUNDED', 'FAILED'].includes(payments.get(id) ?? 'none')).map((id) => `${id}: ${payments.get(id) ?? 'no payment record'}`);
    expect(charged, 'timed-out orders whose payment is neither SKIPPED, FAILED nor REFUNDED').toEqual([]);
    const byStatus: Record<string, number> = {};
    for (const status of payments.values()) byStatus[status] = (byStatus[status] ?? 0) + 1;
    console.log(`[faults saga-timeout] ${timedOut.length} timed out (${mustTimeOut.length} had to); their payments: ${JSON.stringify(byStatus)}`);
  });
});
