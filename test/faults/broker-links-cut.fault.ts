/**
 * Scenario 3: every service loses its broker connection for 5 s mid-stream (all four
 * proxies cut, new connections refused), then the links come back. The relays keep rows
 * until the broker confirms them, the consumers' unacknowledged messages are redelivered
 * and deduplicated, and the services reconnect by themselves: nothing is restarted.
 */
import { expect, test } from 'vitest';
import { waitFor } from '@checkout-saga/shared/testing';
import { hold, runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { services } from './support/system.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 200;
const RATE = 15;

test('cut every broker connection for 5 s mid-stream, then restore: every order ends, invariants hold, no dead letters', async () => {
  await runScenario('broker-cut', {}, async (system, events) => {
    const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 3, label: 'brokercut' });
    await stream.waitAccepted(50);
    for (const service of services) system.brokerProxies[service].cut();
    events.mark(`every broker link cut (${stream.accepted()} accepted)`);
    await hold(5_000); // the scenario: 5 s without a broker
    const midStream = stream.started() < ORDERS;
    for (const service of services) system.brokerProxies[service].restore();
    events.mark(`links restored (${stream.accepted()} accepted)`);
    // No restart: each service reconnects on its own.
    await waitFor(async () => (await Promise.all(services.map((service) => fetch(`${system.services[service].url}/ready`).then((response) => response.status)))).every((status) => status === 200), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'every service to report ready (broker reconnected) after the links came back',
    });
    events.mark('every service ready again');

    const verdict = await judge(system, 'every broker link cut for 5 s', [stream], {
      findings: midStream ? [] : ['the stream had placed all its orders before the links came back: not mid-stream (make it longer)'],
    });
    expectClean(verdict);
    for (const service of services) expect(system.services[service].running, `${service} still runs (it was never restarted)`).toBe(true);
  });
});
