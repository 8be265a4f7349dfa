/**
 * Scenario 1: kill -9 each service in turn while orders stream in (order, payment,
 * inventory, notification), each restarted 2 s later. Nothing is lost (every order ends),
 * nothing is applied twice, nothing is dead-lettered.
 */
import { expect, test } from 'vitest';
import { hold, runScenario } from './support/scenario.ts';
import { startStream } from './support/stream.ts';
import { services } from './support/system.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 320;
const RATE = 10;

test('kill -9 each service in turn mid-stream, restarted 2 s later: every order ends, invariants hold, no dead letters', async () => {
  await runScenario('kill9', {}, async (system, events) => {
    const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 1, label: 'kill9' });
    const findings: string[] = [];
    // Kill the next service once another sixth of the stream is in (or at once, if a restart took that long).
    for (const [index, service] of services.entries()) {
      await stream.waitAccepted(Math.round(((index + 1) * ORDERS) / 6));
      if (stream.started() >= ORDERS) findings.push(`the stream had placed all its orders before ${service} was killed: not mid-stream (make the stream longer)`);
      await system.services[service].kill();
      events.mark(`${service} killed (${stream.accepted()} accepted)`);
      await hold(2_000); // the scenario: down for 2 s
      await system.services[service].start();
      events.mark(`${service} back`);
    }
    const verdict = await judge(system, 'kill -9 each service in turn', [stream], { findings });
    expectClean(verdict);
    expect(stream.failedAttempts(), 'the stream should have seen the order service down').toBeGreaterThan(0);
  });
});
