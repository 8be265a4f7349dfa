/*
 * A steady stream of orders placed while a fault happens. One order starts every
 * 1/ratePerSecond seconds whatever the system does; each is then retried, always with its
 * own Idempotency-Key and the same body, until the order service answers 202, so an order
 * that the service committed but whose answer was lost is replayed, never placed twice.
 * Connection errors, timeouts and 5xx are expected while the order service or its database
 * is down; any other answer is a finding and ends that order's attempts.
 *
 * The mix (per ten orders, shuffled with a seeded generator): seven valid small orders on
 * products with plenty of stock, one declined payment (amount 0.50), one with a line that is
 * out of stock (6 x LIMITED-EDITION, stock 5), one with an unknown SKU.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '@checkout-saga/shared/testing';
import { plentifulProducts } from './system.ts';

export type OrderKind = 'valid' | 'declined' | 'out_of_stock' | 'unknown_sku';

export interface StreamOrder {
  index: number;
  kind: OrderKind;
  idempotencyKey: string;
  body: { customerEmail: string; items: { sku: string; qty: number }[]; amount: string; currency: string };
  /** When the first attempt started (ms since epoch). */
  startedAt: number;
  /** When the 202 came back. */
  acceptedAt?: number;
  orderId?: string;
  sagaId?: string;
  attempts: number;
  /** True when the 202 was a replay of an earlier attempt's answer (Idempotent-Replayed). */
  replayed: boolean;
  /** Why the stream gave up on this order (an unexpected answer, or the deadline). */
  gaveUp?: string;
}

export interface StreamOptions {
  count: number;
  ratePerSecond: number;
  /** Seeds the shuffle of kinds and the choice of products. */
  seed?: number;
  /** Prefixes the idempotency keys and e-mail addresses, to tell streams apart. */
  label?: string;
  /** How long one order may keep retrying before the stream gives up on it; default 120 s. */
  acceptDeadlineMs?: number;
  /** Per-attempt HTTP timeout; default 5 s. */
  attemptTimeoutMs?: number;
}

export interface OrderStream {
  orders: StreamOrder[];
  /** Orders started so far. */
  started(): number;
  /** Orders with a 202 so far. */
  accepted(): number;
  /** Failed attempts so far (refused, timed out, 5xx): what the fault cost the clients. */
  failedAttempts(): number;
  /** Failed attempts by what failed: `HTTP 503`, `ECONNREFUSED`, `timeout`... */
  failures(): Record<string, number>;
  /** True once every order is accepted or given up. */
  finished(): boolean;
  /** Resolves when every order is accepted or given up (never rejects). */
  done: Promise<void>;
  /** Waits until at least n orders have been accepted. */
  waitAccepted(n: number, timeoutMs?: number): Promise<void>;
  /** Stops starting orders (the ones started keep trying). */
  stop(): void;
}

/** mulberry32: a tiny seeded generator, so a run's mix can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const kindsPerTen: OrderKind[] = ['valid', 'valid', 'valid', 'valid', 'valid', 'valid', 'valid', 'declined', 'out_of_stock', 'unknown_sku'];

export function planOrders(count: number, seed: number, label: string): Omit<StreamOrder, 'startedAt' | 'attempts' | 'replayed'>[] {
  const next = random(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  const kinds: OrderKind[] = [];
  while (kinds.length < count) {
    const ten = [...kindsPerTen];
    for (let i = ten.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [ten[i], ten[j]] = [ten[j]!, ten[i]!];
    }
    kinds.push(...ten);
  }
  return kinds.slice(0, count).map((kind, index) => {
    const lines = 1 + Math.floor(next() * 2);
    const skus: string[] = [...new Set(Array.from({ length: lines }, () => pick(plentifulProducts)))];
    const items = skus.map((sku) => ({ sku, qty: 1 + Math.floor(next() * 3) }));
    if (kind === 'out_of_stock') items.push({ sku: 'LIMITED-EDITION', qty: 6 });
    if (kind === 'unknown_sku') items.push({ sku: `NO-SUCH-SKU-${index}`, qty: 1 });
    const cents = 100 + Math.floor(next() * 20_000);
    const amount = kind === 'declined' ? '0.50' : `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
    return {
      index,
      kind,
      idempotencyKey: `${label}-${seed}-${index}`,
      body: { customerEmail: `${label}-${index}@faults.test`, items, amount, currency: pick(['USD', 'EUR', 'GBP'] as const) },
    };
  });
}

/** Starts placing orders at once; returns immediately. */
export function startStream(orderUrl: string, options: StreamOptions): OrderStream {
  const label = options.label ?? 'stream';
  const seed = options.seed ?? 1;
  const deadlineMs = options.acceptDeadlineMs ?? 120_000;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
  const plan = planOrders(options.count, seed, label);
  const orders: StreamOrder[] = [];
  const failures: Record<string, number> = {};
  let acceptedCount = 0;
  let failedAttempts = 0;
  let stopped = false;

  const place = async (order: StreamOrder): Promise<void> => {
    const deadline = order.startedAt + deadlineMs;
    for (let backoff = 100; ; backoff = Math.min(backoff * 2, 1_000)) {
      order.attempts++;
      let failure: string;
      try {
        const response = await fetch(`${orderUrl}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': order.idempotencyKey },
          body: JSON.stringify(order.body),
          signal: AbortSignal.timeout(attemptTimeoutMs),
        });
        const text = await response.text();
        if (response.status === 202) {
          const body = JSON.parse(text) as { orderId: string; sagaId: string };
          order.orderId = body.orderId;
          order.sagaId = body.sagaId;
          order.acceptedAt = Date.now();
          order.replayed = response.headers.get('idempotent-replayed') === 'true';
          acceptedCount++;
          return;
        }
        if (response.status < 500) {
          order.gaveUp = `POST /orders answered ${response.status}: ${text.slice(0, 300)}`;
          return;
        }
        failure = `HTTP ${response.status}`;
      } catch (error) {
        failure = describeFetchError(error);
      }
      failedAttempts++;
      failures[failure] = (failures[failure] ?? 0) + 1;
      if (Date.now() + backoff > deadline) {
        order.gaveUp = `not accepted within ${deadlineMs} ms after ${order.attempts} attempts (last: ${failure})`;
        return;
      }
      await sleep(backoff); // retry pacing, not synchronisation
    }
  };

  const inFlight: Promise<void>[] = [];
  const intervalMs = 1_000 / options.ratePerSecond;
  const launching = (async () => {
    const begin = Date.now();
    for (const planned of plan) {
      if (stopped) break;
      // A steady rate: order i starts at begin + i * interval, however long earlier ones take.
      const due = begin + planned.index * intervalMs;
      if (due > Date.now()) await sleep(due - Date.now()); // pacing the load, not synchronising
      const order: StreamOrder = { ...planned, startedAt: Date.now(), attempts: 0, replayed: false };
      orders.push(order);
      inFlight.push(place(order));
    }
  })();
  let finished = false;
  const done = launching.then(async () => {
    await Promise.allSettled(inFlight);
    finished = true;
  });

  return {
    orders,
    started: () => orders.length,
    accepted: () => acceptedCount,
    failedAttempts: () => failedAttempts,
    failures: () => ({ ...failures }),
    finished: () => finished,
    done,
    waitAccepted: async (n, timeoutMs = 60_000) => {
      await waitFor(() => acceptedCount >= n || finished, { timeoutMs, intervalMs: 20, message: `${n} orders of the stream to be accepted` });
      if (acceptedCount < n) throw new Error(`the stream ended with ${acceptedCount} orders accepted, fewer than the ${n} awaited`);
    },
    stop: () => {
      stopped = true;
    },
  };
}

function describeFetchError(error: unknown): string {
  const { name, cause } = error as { name?: string; cause?: { code?: string } };
  if (name === 'TimeoutError' || name === 'AbortError') return 'timeout';
  return cause?.code ?? (error as Error).message ?? String(error);
}
