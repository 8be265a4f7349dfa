/**
 * Scenario 5: every broker link is slowed by 200 ms in each direction for the whole stream.
 * Sagas take longer; none is lost, none times out, nothing is applied twice.
 */
import { test } from 'vitest';
import { runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { services } from './support/system.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 150;
const RATE = 15;
const LATENCY_MS = 200;

test('200 ms latency on every broker link for the whole stream: every order ends, invariants hold, no dead letters', async () => {
  await runScenario('broker-latency', {}, async (system, events) => {
    for (const service of services) system.brokerProxies[service].setLatency(LATENCY_MS);
    events.mark(`${LATENCY_MS} ms latency on every broker link`);
    const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 5, label: 'latency' });
    await stream.done;
    events.mark(`stream done (${stream.accepted()} accepted)`);
    // The latency stays on until everything has settled.
    const verdict = await judge(system, `${LATENCY_MS} ms broker latency`, [stream]);
    expectClean(verdict);
  });
});
