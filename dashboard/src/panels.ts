import type { OrderTables } from '@checkout-saga/order';
import type { Logger, Metrics } from '@checkout-saga/shared';
import type { Kysely } from 'kysely';
import type { DashboardConfig } from './settings.ts';
import type { Product, ProductsPanel, ReliabilityPanel, ServiceCounters } from './wire.ts';

/*
 * The dashboard's catalogue and reliability counters. The order service reads its own from
 * its database and metrics registry; the other services' only through their public read-only
 * HTTP (GET /products, GET /metrics) at the DASHBOARD_*_URL settings. That is a convenience
 * for people watching, outside the saga: nothing in the saga depends on it, and a service that
 * is not configured or does not answer only leaves its panel saying so.
 */

const READ_TIMEOUT_MS = 2000;

type Remote = 'payment' | 'inventory' | 'notification';
const settingOf: Record<Remote, 'DASHBOARD_PAYMENT_URL' | 'DASHBOARD_INVENTORY_URL' | 'DASHBOARD_NOTIFICATION_URL'> = {
  payment: 'DASHBOARD_PAYMENT_URL',
  inventory: 'DASHBOARD_INVENTORY_URL',
  notification: 'DASHBOARD_NOTIFICATION_URL',
};

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (what every service's GET /metrics serves) into samples. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_all, char: string) => (char === 'n' ? '\n' : char));
    const value = Number(match[3]);
    if (!Number.isNaN(value)) samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The sum of every sample of `name` whose labels include `labels`; null when there is none. */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | null {
  const matching = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  return matching.length ? matching.reduce((sum, sample) => sum + sample.value, 0) : null;
}

async function read(url: string): Promise<Response> {
  const response = await fetch(url, { signal: AbortSignal.timeout(READ_TIMEOUT_MS), headers: { accept: 'application/json, text/plain' } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response;
}

const base = (url: string) => url.replace(/\/+$/, '');

export class DashboardPanels {
  constructor(
    private readonly db: Kysely<OrderTables>,
    private readonly config: DashboardConfig,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Inventory's catalogue, by SKU. */
  async products(): Promise<ProductsPanel> {
    const setting = settingOf.inventory;
    const url = this.config[setting];
    if (!url) return { status: 'not_configured', setting, products: [] };
    try {
      const body = (await (await read(`${base(url)}/products`)).json()) as Product[];
      const products = body.map(({ sku, name, price, stock }) => ({ sku, name, price, stock }));
      return { status: 'ok', setting, products };
    } catch (error) {
      return { status: 'unreachable', setting, products: [], error: this.failure('inventory', error) };
    }
  }

  /** Outbox backlog, retried and dead-lettered messages (compensations among them) and dead-letter queue depth per service, and sagas timed out. */
  async reliability(): Promise<ReliabilityPanel> {
    const [own, payment, inventory, notification, timedOut] = await Promise.all([
      this.ownCounters(),
      this.remoteCounters('payment'),
      this.remoteCounters('inventory'),
      this.remoteCounters('notification'),
      this.db
        .selectFrom('orders')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('status', '=', 'CANCELLED')
        .where('reason', '=', 'timeout')
        .executeTakeFirstOrThrow(),
    ]);
    return { services: [own, payment, inventory, notification], sagasTimedOut: Number(timedOut.count) };
  }

  private async ownCounters(): Promise<ServiceCounters> {
    const [backlog, messages, compensations, deadLetterQueue] = await Promise.all([
      this.db
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('published_at', 'is', null)
        .executeTakeFirstOrThrow(),
      this.metrics.messages.get(),
      this.metrics.compensationsDeadLettered.get(),
      this.metrics.deadLetterQueue.get(),
    ]);
    const outcome = (name: string) => messages.values.filter((sample) => sample.labels.outcome === name).reduce((sum, sample) => sum + sample.value, 0);
    return {
      service: 'order',
      status: 'ok',
      outboxBacklog: Number(backlog.count),
      retried: outcome('retried'),
      deadLettered: outcome('dead_lettered'),
      compensationsDeadLettered: compensations.values.reduce((sum, sample) => sum + sample.value, 0),
      deadLetterQueue: deadLetterQueue.values[0]?.value ?? null,
    };
  }

  private async remoteCounters(service: Remote): Promise<ServiceCounters> {
    const setting = settingOf[service];
    const url = this.config[setting];
    const unknown = { outboxBacklog: null, retried: null, deadLettered: null, compensationsDeadLettered: null, deadLetterQueue: null };
    if (!url) return { service, status: 'not_configured', setting, ...unknown };
    try {
      const samples = parsePrometheus(await (await read(`${base(url)}/metrics`)).text());
      return {
        service,
        status: 'ok',
        setting,
        // Notification has no database and so no outbox.
        outboxBacklog: service === 'notification' ? null : sumOf(samples, 'outbox_pending_rows'),
        retried: sumOf(samples, 'messages_total', { outcome: 'retried' }) ?? 0,
        deadLettered: sumOf(samples, 'messages_total', { outcome: 'dead_lettered' }) ?? 0,
        compensationsDeadLettered: sumOf(samples, 'compensations_dead_lettered_total') ?? 0,
        deadLetterQueue: sumOf(samples, 'dead_letter_queue_messages'),
      };
    } catch (error) {
      return { service, status: 'unreachable', setting, ...unknown, error: this.failure(service, error) };
    }
  }

  private failure(service: string, error: unknown): string {
    const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined;
    const message =
      error instanceof Error
        ? error.name === 'TimeoutError'
          ? `no answer within ${READ_TIMEOUT_MS} ms`
          : `${error.message}${cause?.code ? ` (${cause.code})` : ''}`
        : String(error);
    this.logger.debug({ service, err: message }, 'dashboard could not read another service');
    return message;
  }
}
