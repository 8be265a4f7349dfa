/*
 * One fault scenario's life: start an isolated system, run the scenario, and whatever
 * happens stop every child process, close every proxy, delete the broker objects and drop
 * the databases. The services' output is printed only when the scenario fails.
 */
import { onTestFinished } from 'vitest';
import { startFaultSystem, type FaultSystem, type FaultSystemOptions } from './system.ts';

/** Characters of each service's output printed on failure: the tail explains it. */
const PRINTED_TAIL = 12_000;

/** What happened when in a scenario, printed with the verdict: `mark('payment killed')`. */
export interface Timeline {
  mark(what: string): void;
  toString(): string;
}

export function timeline(): Timeline {
  const begin = Date.now();
  const marks: string[] = [];
  return {
    mark: (what) => void marks.push(`+${((Date.now() - begin) / 1000).toFixed(1)}s ${what}`),
    toString: () => marks.join(' | '),
  };
}

export async function runScenario(label: string, options: FaultSystemOptions, body: (system: FaultSystem, timeline: Timeline) => Promise<void>): Promise<void> {
  const began = Date.now();
  const system = await startFaultSystem(label, options);
  // Also when the test times out and the body is abandoned mid-way (stop() runs once).
  onTestFinished(() => system.stop());
  const events = timeline();
  events.mark(`system up (${((Date.now() - began) / 1000).toFixed(1)} s to start)`);
  try {
    await body(system, events);
    console.log(`[faults ${label}] timeline: ${events}`);
  } catch (error) {
    console.error(`[faults ${label}] timeline: ${events}`);
    const said = [...Object.values(system.services), ...system.replicas].map((service) => `===== ${service.name} on ${service.port} (last ${PRINTED_TAIL} characters)\n${service.output().slice(-PRINTED_TAIL)}`);
    console.error(`[faults ${label}] FAILED; what the services said:\n${said.join('\n')}`);
    throw error;
  } finally {
    await system.stop();
  }
}

/** The scenario's definition says "wait N seconds" (a fault's duration), which is not synchronisation. */
export function hold(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
