/**
 * Scenario 6: SIGTERM to every service at once mid-stream (the graceful path: stop
 * consuming, finish and ack what is in hand, flush the relay, close). Each exits 0; then all
 * four start again and the stream, which retried while order was down, completes.
 */
import { expect, test } from 'vitest';
import { hold, runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { services } from './support/system.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 200;
const RATE = 15;

test('SIGTERM every service mid-stream: each exits 0; after a restart every order ends, invariants hold, no dead letters', async () => {
  await runScenario('sigterm', {}, async (system, events) => {
    const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 6, label: 'sigterm' });
    await stream.waitAccepted(60);
    events.mark(`SIGTERM to all four (${stream.accepted()} accepted)`);
    const codes = await Promise.all(services.map((service) => system.services[service].terminate()));
    events.mark(`all exited: ${services.map((service, index) => `${service} ${codes[index]}`).join(', ')}`);
    expect(Object.fromEntries(services.map((service, index) => [service, codes[index]])), 'exit codes after SIGTERM').toEqual({ order: 0, payment: 0, inventory: 0, notification: 0 });
    for (const service of services) expect(system.services[service].output(), `${service} logged no shutdown error`).not.toMatch(/shutdown failed|graceful shutdown timed out/);
    const midStream = stream.started() < ORDERS;
    await hold(1_000); // the scenario: all four down a moment, orders keep coming (and failing)
    await Promise.all(services.map((service) => system.services[service].start()));
    events.mark(`all four restarted (${stream.accepted()} accepted)`);

    const verdict = await judge(system, 'SIGTERM every service, then restart', [stream], {
      findings: midStream ? [] : ['the stream had placed all its orders before the services were stopped: not mid-stream (make it longer)'],
    });
    expectClean(verdict);
  });
});
