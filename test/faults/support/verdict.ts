/*
 * The end of every scenario: wait until the system has settled (no PENDING order, nothing
 * unpublished in any outbox, every queue and retry queue empty, and all of it still true a
 * moment later), then judge it where the data lives: the six invariants over every order in
 * the three databases, each order's outcome against what its kind should get, the stream's
 * at-most-once placement, and the dead-letter queues against exactly the poison injected.
 */
import amqp from 'amqplib';
import { sql } from 'kysely';
import { expect } from 'vitest';
import type { ServiceName } from '@checkout-saga/shared/internal';
import { waitFor } from '@checkout-saga/shared/testing';
import { duplicateEffectViolations, invariantViolations, pendingOrders, unpublishedRows } from '../../support/invariants.ts';
import type { OrderKind, OrderStream, StreamOrder } from './stream.ts';
import { services, type FaultSystem } from './system.ts';

export interface DeadLetter {
  service: ServiceName;
  type: string;
  messageId: string;
  routingKey: string;
  reason: string;
  handler: string;
  attempt: number;
  body: string;
}

/** A dead letter a scenario injected on purpose, and how to recognise it. */
export interface ExpectedDeadLetter {
  service: ServiceName;
  what: string;
  messageId?: string;
  routingKey?: string;
  reason: RegExp;
  handler?: string;
  attempt?: number;
}

export interface VerdictOptions {
  /** The poison the scenario injected; none by default. */
  deadLetters?: ExpectedDeadLetter[];
  /** Dead letters a scenario provokes without knowing how many (the broker's, past a delivery limit): not reported. */
  deadLettersAllowed?: (letter: DeadLetter) => boolean;
  /** Whether a saga may end CANCELLED(timeout) whatever its kind (scenarios that outlast SAGA_TIMEOUT_MS). */
  timeoutsAllowed?: boolean;
  /** How long the system may take to settle; default 90 s. */
  settleTimeoutMs?: number;
  /** Extra findings of the scenario itself, reported with the rest. */
  findings?: string[];
}

export interface Verdict {
  scenario: string;
  orders: number;
  confirmed: number;
  cancelled: Record<string, number>;
  /** Invariants 1–6 broken (orders left PENDING and unpublished rows count here too). */
  violations: string[];
  stuck: number;
  unpublished: number;
  deadLetters: DeadLetter[];
  /** Dead letters that should not be there, or injected ones that are missing or look wrong. */
  deadLetterProblems: string[];
  /** Orders that ended otherwise than their kind should (a valid order cancelled, say). */
  outcomeProblems: string[];
  /** The stream's own problems: orders never accepted, or placed twice. */
  streamProblems: string[];
  findings: string[];
  /** End-to-end latency (order created → terminal, by the order database's clock) per order id, ms. */
  latencyMs: Map<string, number>;
  settled: boolean;
  line: string;
}

const expectedOutcome: Record<OrderKind, { status: 'CONFIRMED' | 'CANCELLED'; reason: string | null }> = {
  valid: { status: 'CONFIRMED', reason: null },
  declined: { status: 'CANCELLED', reason: 'payment_failed' },
  out_of_stock: { status: 'CANCELLED', reason: 'inventory_failed' },
  unknown_sku: { status: 'CANCELLED', reason: 'inventory_failed' },
};

/** Messages ready in each service's queue and retry queues (not the dead-letter queues). */
async function queuedMessages(system: FaultSystem): Promise<number> {
  const connection = await amqp.connect(system.amqpUrl);
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    let total = 0;
    for (const service of services) {
      const queues = system.queues(service);
      for (const queue of [queues.main, ...queues.retries]) total += (await channel.checkQueue(queue)).messageCount;
    }
    await channel.close();
    return total;
  } finally {
    await connection.close().catch(() => {});
  }
}

/** Reads every dead-letter queue without consuming it (everything goes back when the channel closes). */
export async function readDeadLetters(system: FaultSystem): Promise<DeadLetter[]> {
  const connection = await amqp.connect(system.amqpUrl);
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    const found: DeadLetter[] = [];
    for (const service of services) {
      for (;;) {
        const message = await channel.get(system.queues(service).deadLetters, { noAck: false });
        if (!message) break;
        const headers = message.properties.headers ?? {};
        found.push({
          service,
          type: String(message.properties.type ?? ''),
          messageId: String(message.properties.messageId ?? ''),
          routingKey: String(headers['x-original-routing-key'] ?? message.fields.routingKey),
          // The kit's reason, or the broker's (x-death) for a message it dead-lettered itself.
          reason: String(headers['x-dead-letter-reason'] ?? brokerReason(headers['x-death'])),
          handler: String(headers['x-failed-handler'] ?? ''),
          attempt: Number(headers['x-attempt'] ?? 0),
          body: message.content.toString('utf8').slice(0, 300),
        });
      }
    }
    await channel.close();
    return found;
  } finally {
    await connection.close().catch(() => {});
  }
}

function brokerReason(deaths: unknown): string {
  const [death] = Array.isArray(deaths) ? (deaths as { reason?: unknown; queue?: unknown }[]) : [];
  return death ? `broker: ${String(death.reason)} in ${String(death.queue)}` : '';
}

/**
 * Waits for the streams to end, then until nothing moves: no PENDING order, no unpublished
 * outbox row, no message waiting in any queue or retry queue, on three probes in a row.
 * Returns false (instead of failing) at the deadline, so the verdict can say what is stuck.
 */
export async function settle(system: FaultSystem, streams: readonly OrderStream[], timeoutMs = 90_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  try {
    await waitFor(() => streams.every((stream) => stream.finished()), { timeoutMs, intervalMs: 100, message: 'every order of the stream to be accepted or given up' });
    let quietProbes = 0;
    await waitFor(
      async () => {
        const quiet = (await pendingOrders(system)) === 0 && (await unpublishedRows(system)) === 0 && (await queuedMessages(system)) === 0;
        quietProbes = quiet ? quietProbes + 1 : 0;
        return quietProbes >= 3;
      },
      { timeoutMs: Math.max(1_000, deadline - Date.now()), intervalMs: 300, message: 'no PENDING order, no unpublished outbox row and empty queues' },
    );
    return true;
  } catch {
    return false;
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Matches dead letters to the expected ones, one each; anything left over on either side is a problem. */
function compareDeadLetters(actual: readonly DeadLetter[], expected: readonly ExpectedDeadLetter[]): string[] {
  const problems: string[] = [];
  const unmatched = [...actual];
  for (const wanted of expected) {
    const index = unmatched.findIndex(
      (letter) =>
        letter.service === wanted.service &&
        (wanted.messageId === undefined || letter.messageId === wanted.messageId) &&
        (wanted.routingKey === undefined || letter.routingKey === wanted.routingKey),
    );
    if (index < 0) {
      problems.push(`missing dead letter: ${wanted.what} in ${wanted.service}.dlq`);
      continue;
    }
    const [letter] = unmatched.splice(index, 1);
    if (!wanted.reason.test(letter!.reason)) problems.push(`${wanted.what}: x-dead-letter-reason ${JSON.stringify(letter!.reason)} does not match ${wanted.reason}`);
    if (wanted.handler !== undefined && letter!.handler !== wanted.handler) problems.push(`${wanted.what}: x-failed-handler ${letter!.handler}, expected ${wanted.handler}`);
    if (wanted.attempt !== undefined && letter!.attempt !== wanted.attempt) problems.push(`${wanted.what}: x-attempt ${letter!.attempt}, expected ${wanted.attempt}`);
  }
  for (const letter of unmatched) {
    problems.push(`unexpected dead letter in ${letter.service}.dlq: ${letter.type || '(no type)'} ${letter.messageId} (${letter.routingKey}) after ${letter.attempt} attempt(s): ${letter.reason}`);
  }
  return problems;
}

export async function judge(system: FaultSystem, scenario: string, streams: readonly OrderStream[], options: VerdictOptions = {}): Promise<Verdict> {
  const began = Date.now();
  const settled = await settle(system, streams, options.settleTimeoutMs);
  const settleMs = Date.now() - began;

  const rows = await system.orderDb.selectFrom('orders').select(['order_id', 'status', 'reason', 'created_at', 'updated_at']).execute();
  const byId = new Map(rows.map((row) => [row.order_id, row]));
  const placed: StreamOrder[] = streams.flatMap((stream) => stream.orders);

  // The stream: every intended order accepted, and placed once (no order the stream does not know of).
  const streamProblems: string[] = [];
  const gaveUp = placed.filter((order) => order.gaveUp);
  for (const order of gaveUp.slice(0, 10)) streamProblems.push(`order #${order.index} (${order.idempotencyKey}) never accepted: ${order.gaveUp}`);
  if (gaveUp.length > 10) streamProblems.push(`… and ${gaveUp.length - 10} more orders never accepted`);
  const accepted = placed.filter((order) => order.orderId);
  const known = new Set(accepted.map((order) => order.orderId!));
  if (known.size !== accepted.length) streamProblems.push(`${accepted.length} accepted orders share ${known.size} order ids: one Idempotency-Key answered for two intended orders`);
  const strangers = rows.filter((row) => !known.has(row.order_id));
  if (strangers.length) streamProblems.push(`${strangers.length} order(s) in the database that no 202 named (an order placed twice?): ${strangers.slice(0, 5).map((row) => row.order_id).join(', ')}`);
  for (const order of accepted) if (!byId.has(order.orderId!)) streamProblems.push(`order ${order.orderId} was answered 202 but is not in the database`);

  // Each order's outcome against its kind.
  const outcomeProblems: string[] = [];
  for (const order of accepted) {
    const row = byId.get(order.orderId!);
    if (!row || row.status === 'PENDING') continue; // counted as stuck
    const wanted = expectedOutcome[order.kind];
    if (row.status === wanted.status && row.reason === wanted.reason) continue;
    if (options.timeoutsAllowed && row.reason === 'timeout') continue;
    outcomeProblems.push(`${order.kind} order ${order.orderId} ended ${row.status}${row.reason ? ` (${row.reason})` : ''}, expected ${wanted.status}${wanted.reason ? ` (${wanted.reason})` : ''}`);
  }

  const violations = [...(await invariantViolations(system, system.initialStock)), ...(await duplicateEffectViolations(system))];
  const stuck = await pendingOrders(system);
  const unpublished = await unpublishedRows(system);
  const deadLetters = await readDeadLetters(system);
  const allowed = options.deadLettersAllowed ?? (() => false);
  const deadLetterProblems = compareDeadLetters(deadLetters.filter((letter) => !allowed(letter)), options.deadLetters ?? []);

  const latencyMs = new Map<string, number>();
  for (const row of rows) if (row.status !== 'PENDING') latencyMs.set(row.order_id, row.updated_at.getTime() - row.created_at.getTime());
  const latencies = [...latencyMs.values()];
  const confirmed = rows.filter((row) => row.status === 'CONFIRMED').length;
  const cancelled: Record<string, number> = {};
  for (const row of rows) if (row.status === 'CANCELLED') cancelled[row.reason ?? '?'] = (cancelled[row.reason ?? '?'] ?? 0) + 1;
  const failedAttempts = streams.reduce((sum, stream) => sum + stream.failedAttempts(), 0);
  const findings = [...(options.findings ?? [])];
  // A service that died on its own is a bug whatever else the verdict says.
  const processes = [...services.map((service) => system.services[service]), ...system.replicas];
  for (const child of processes) {
    for (const crash of child.crashes()) {
      findings.unshift(`BUG: ${child.name} (port ${child.port}) exited on its own (code ${crash.code}) at ${crash.at}, nobody killed it; its last output:\n${crash.tail}`);
    }
  }

  const cancelledText = Object.keys(cancelled).length ? Object.entries(cancelled).sort().map(([reason, count]) => `${reason} ${count}`).join(', ') : 'none';
  const problems = outcomeProblems.length + streamProblems.length + deadLetterProblems.length + findings.length;
  const line =
    `[faults] ${scenario}: ${rows.length} orders (${accepted.length}/${placed.length} accepted, ${failedAttempts} failed HTTP attempts), ` +
    `${confirmed} confirmed, cancelled: ${cancelledText}; violations ${violations.length}, stuck ${stuck}, unpublished ${unpublished}, ` +
    `dead letters ${deadLetters.length}${deadLetters.length ? ` (${deadLetters.map((letter) => `${letter.service}:${letter.type || 'invalid'}`).join(', ')})` : ''}, ` +
    `crashes ${processes.reduce((sum, child) => sum + child.crashes().length, 0)}, other problems ${problems}; e2e p50 ${percentile(latencies, 50)} ms p95 ${percentile(latencies, 95)} ms max ${percentile(latencies, 100)} ms; ` +
    `settled ${settled ? `in ${(settleMs / 1000).toFixed(1)} s` : 'NOT within the deadline'}`;
  console.log(line);

  return { scenario, orders: rows.length, confirmed, cancelled, violations, stuck, unpublished, deadLetters, deadLetterProblems, outcomeProblems, streamProblems, findings, latencyMs, settled, line };
}

/** The scenario's pass condition: nothing broken, nothing stuck, nothing unpublished, exactly the injected dead letters. */
export function expectClean(verdict: Verdict): void {
  const show = (list: readonly string[]) => list.slice(0, 20).join('\n  ') + (list.length > 20 ? `\n  … ${list.length - 20} more` : '');
  // Crashes and the scenario's own findings first: they explain what follows.
  expect(verdict.findings, `"${verdict.scenario}":\n  ${show(verdict.findings)}`).toEqual([]);
  expect(verdict.violations, `INVARIANT VIOLATED in "${verdict.scenario}":\n  ${show(verdict.violations)}`).toEqual([]);
  expect(verdict.stuck, `${verdict.stuck} order(s) still PENDING after the settle deadline in "${verdict.scenario}"`).toBe(0);
  expect(verdict.unpublished, `${verdict.unpublished} outbox row(s) still unpublished in "${verdict.scenario}"`).toBe(0);
  expect(verdict.deadLetterProblems, `dead-letter queues in "${verdict.scenario}" hold other than the injected poison:\n  ${show(verdict.deadLetterProblems)}`).toEqual([]);
  expect(verdict.outcomeProblems, `orders in "${verdict.scenario}" ended otherwise than their kind should:\n  ${show(verdict.outcomeProblems)}`).toEqual([]);
  expect(verdict.streamProblems, `the order stream in "${verdict.scenario}":\n  ${show(verdict.streamProblems)}`).toEqual([]);
  expect(verdict.settled, `"${verdict.scenario}" did not settle within the deadline`).toBe(true);
}

/** The order's end-to-end latencies for a set of order ids (ms). */
export function latenciesOf(verdict: Verdict, orderIds: readonly string[]): number[] {
  return orderIds.map((id) => verdict.latencyMs.get(id)).filter((value): value is number => value !== undefined);
}

/** How many outbox rows of one service are not yet published. */
export async function unpublishedOf(db: FaultSystem['orderDb'] | FaultSystem['paymentDb'] | FaultSystem['inventoryDb']): Promise<number> {
  const { rows } = await sql<{ count: number }>`select count(*)::int as count from outbox where published_at is null`.execute(db);
  return rows[0]!.count;
}
