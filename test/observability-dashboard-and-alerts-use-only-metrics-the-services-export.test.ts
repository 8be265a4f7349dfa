/**
 * The compose observability stack (docker-compose.observability.yml, observability/): its
 * Prometheus config, alert rules, Grafana provisioning and dashboard parse and fit together,
 * and every metric name the dashboard and the alert rules query is one the running services
 * export (or RabbitMQ's plugin does), with the labels the queries use. Renaming a metric
 * without the dashboard, or the other way round, fails here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { scrape, type Sample } from './support/prometheus.ts';
import { startSystem, type System } from './support/system.ts';

type Json = Record<string, any>;

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

const compose = parse(read('docker-compose.yml')) as Json;
const observability = parse(read('docker-compose.observability.yml')) as Json;
const prometheus = parse(read('observability/prometheus/prometheus.yml')) as Json;
const alerts = parse(read('observability/prometheus/alerts.yml')) as Json;
const dashboard = JSON.parse(read('observability/grafana/dashboards/checkout-saga.json')) as Json;
const datasources = parse(read('observability/grafana/provisioning/datasources/datasources.yml')) as Json;
const dashboardProviders = parse(read('observability/grafana/provisioning/dashboards/dashboards.yml')) as Json;

const services = ['order', 'payment', 'inventory', 'notification'] as const;

/**
 * What rabbitmq_prometheus exports for the queue_coarse_metrics family on /metrics/detailed
 * (the broker here has the plugin off, and enabling it would reconfigure a shared server).
 */
const BROKER_QUEUE_METRICS = new Set(['rabbitmq_detailed_queue_messages_ready', 'rabbitmq_detailed_queue_messages_unacked', 'rabbitmq_detailed_queue_messages']);
/** Series Prometheus makes itself for every target. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);
/** Labels Prometheus adds at scrape time (job, instance), and histogram buckets' le. */
const ADDED_LABELS = new Set(['job', 'instance', 'le']);

/** Every PromQL expression the dashboard's panels query, with the panel's title. */
function dashboardQueries(): { where: string; expr: string }[] {
  const panels = (dashboard.panels as Json[]).flatMap((panel) => [panel, ...((panel.panels as Json[] | undefined) ?? [])]);
  return panels.flatMap((panel) => ((panel.targets as Json[] | undefined) ?? []).map((target) => ({ where: `panel "${panel.title}"`, expr: String(target.expr) })));
}

function alertQueries(): { where: string; expr: string }[] {
  return (alerts.groups as Json[]).flatMap((group) => (group.rules as Json[]).map((rule) => ({ where: `alert ${rule.alert}`, expr: String(rule.expr) })));
}

const AGGREGATION_CLAUSE = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);

/** The metric names an expression selects: identifiers that are not functions, keywords, labels or strings. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(AGGREGATION_CLAUSE, ' ');
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((match) => !/^\s*\(/.test(bare.slice(match.index + match[0].length)) && !KEYWORDS.has(match[0]))
    .map((match) => match[0]);
}

/** The label names an expression matches on or groups by. */
function labelNames(expr: string): string[] {
  const matchers = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((match) => [...match[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((label) => label[1]!));
  const grouped = [...expr.matchAll(AGGREGATION_CLAUSE)].flatMap((match) => match[1]!.split(',').map((label) => label.trim()).filter(Boolean));
  return [...matchers, ...grouped];
}

describe('the configuration', () => {
  test('Prometheus scrapes every instance of each service by DNS on its compose port, and RabbitMQ on 15692', () => {
    const jobs = prometheus.scrape_configs as Json[];
    for (const service of services) {
      const job = jobs.find((entry) => entry.job_name === service);
      expect(job, `a scrape job for ${service}`).toBeDefined();
      const port = Number(compose.services[service].environment.PORT);
      expect(job!.dns_sd_configs, service).toEqual([expect.objectContaining({ names: [service], type: 'A', port })]);
      expect(job!.static_configs, `${service} is found by DNS, not listed`).toBeUndefined();
    }
    const brokerTargets = jobs.filter((job) => job.job_name.startsWith('rabbitmq')).flatMap((job) => job.static_configs.flatMap((config: Json) => config.targets));
    expect(brokerTargets).toEqual(['rabbitmq:15692', 'rabbitmq:15692']);
    expect(jobs.find((job) => job.job_name === 'rabbitmq-queues')).toMatchObject({ metrics_path: '/metrics/detailed', params: { family: ['queue_coarse_metrics'] } });
    expect(compose.services.rabbitmq.image).toMatch(/^rabbitmq:/); // the official image, which enables rabbitmq_prometheus
  });

  test('the observability services sit behind a profile, listen on loopback, and mount files that exist where the configs expect them', () => {
    const { grafana, jaeger, prometheus: prometheusService, ...services } = observability.services as Json;
    const added: Json = { grafana, jaeger, prometheus: prometheusService };
    expect(Object.keys(added).every((name) => added[name])).toBe(true);
    // Besides them, the file only points the four services' traces at Jaeger; without it, tracing is off.
    const merged = parse(read('docker-compose.yml'), { merge: true }) as Json;
    expect(Object.keys(services).sort()).toEqual(['inventory', 'notification', 'order', 'payment']);
    for (const [name, service] of Object.entries(services)) {
      expect(service, name).toEqual({ environment: { OTEL_EXPORTER_OTLP_ENDPOINT: '${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}' } });
      expect(merged.services[name].environment.OTEL_EXPORTER_OTLP_ENDPOINT, `${name} has tracing off by default`).toBe('${OTEL_EXPORTER_OTLP_ENDPOINT:-}');
    }
    for (const [name, service] of Object.entries(added)) {
      expect(service.profiles, name).toEqual(['observability']);
      expect(compose.services[name], `${name} is not in docker-compose.yml as well`).toBeUndefined();
      for (const port of service.ports as string[]) expect(port, name).toMatch(/^127\.0\.0\.1:/);
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(':')[0]!;
        expect(existsSync(join(root, source)), `${name} mounts ${source}`).toBe(true);
      }
    }
    expect(added.jaeger.ports).toContain('127.0.0.1:16686:16686');
    const mounts = (service: string) => new Map((added[service].volumes as string[]).map((volume) => [volume.split(':')[1]!, volume.split(':')[0]!]));
    for (const rules of prometheus.rule_files as string[]) expect(mounts('prometheus').has(rules), `${rules} is mounted`).toBe(true);
    expect(mounts('grafana').get('/var/lib/grafana/dashboards')).toBe('./observability/grafana/dashboards');
    expect(dashboardProviders.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
    expect(added.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/var/lib/grafana/dashboards/checkout-saga.json');
  });

  test("the dashboard's panels query the provisioned Prometheus, and every alert rule has a name, an expression and a summary", () => {
    const uids = new Set((datasources.datasources as Json[]).map((source) => source.uid));
    const panels = (dashboard.panels as Json[]).filter((panel) => panel.type !== 'row');
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect(uids.has(panel.datasource.uid), `panel "${panel.title}" datasource`).toBe(true);
      expect(panel.targets.length, `panel "${panel.title}" queries`).toBeGreaterThan(0);
    }
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    for (const rule of (alerts.groups as Json[]).flatMap((group) => group.rules as Json[])) {
      expect(rule).toMatchObject({ alert: expect.any(String), expr: expect.any(String), annotations: { summary: expect.any(String) } });
    }
  });

  test('the metric names are read out of PromQL, not its functions, labels or ranges', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, transition) (rate(order_saga_step_seconds_bucket[$__rate_interval])))')).toEqual(['order_saga_step_seconds_bucket']);
    expect(metricNames('sum by (job) (increase(messages_total{outcome="dead_lettered", handler=~"a|b"}[10m])) > 0 and up == 1')).toEqual(['messages_total', 'up']);
    expect(labelNames('sum by (job, handler) (messages_total{outcome="retried"})')).toEqual(['outcome', 'job', 'handler']);
  });
});

describe('against the running services', () => {
  let system: System;
  /** Every sample every instance of every service exports, after orders went through. */
  let samples: Sample[] = [];

  beforeAll(async () => {
    system = await startSystem('dashmetrics');
    // One that confirms and one that is declined, so the outcome and reason series exist.
    const placed = [await placeOrder(system, order()), await placeOrder(system, order({ amount: '0.50' }))];
    for (const { orderId } of placed) await settledOrder(system, orderId);
    samples = (await Promise.all(system.services.map((service) => scrape(service.url)))).flat();
  });

  afterAll(async () => {
    await system?.stop();
  });

  test('every metric the dashboard and the alert rules query is exported by a service or by the broker, with the labels they use', () => {
    const exported = new Map<string, Set<string>>();
    for (const sample of samples) {
      const labels = exported.get(sample.name) ?? new Set<string>();
      for (const label of Object.keys(sample.labels)) labels.add(label);
      exported.set(sample.name, labels);
    }
    const problems: string[] = [];
    const used = new Set<string>();
    for (const { where, expr } of [...dashboardQueries(), ...alertQueries()]) {
      const names = metricNames(expr);
      if (names.length === 0) problems.push(`${where} queries no metric: ${expr}`);
      for (const name of names) {
        used.add(name);
        if (!exported.has(name) && !BROKER_QUEUE_METRICS.has(name) && !SYNTHETIC.has(name)) problems.push(`${where} uses ${name}, which no service exports`);
      }
      const serviceMetrics = names.filter((name) => exported.has(name));
      if (serviceMetrics.length === 0) continue;
      for (const label of labelNames(expr)) {
        if (ADDED_LABELS.has(label)) continue;
        if (!serviceMetrics.some((name) => exported.get(name)!.has(label))) problems.push(`${where} uses the label ${label}, which ${serviceMetrics.join(', ')} does not have`);
      }
    }
    expect(problems).toEqual([]);
    // The panels: sagas by outcome and reason, end to end and per step, outbox backlog and age, retries and dead letters, queue depths.
    for (const name of [
      'order_sagas_started_total',
      'order_sagas_finished_total',
      'order_saga_duration_seconds_bucket',
      'order_saga_step_seconds_bucket',
      'outbox_pending_rows',
      'outbox_oldest_pending_seconds',
      'messages_total',
      'rabbitmq_detailed_queue_messages_ready',
    ]) {
      expect(used, name).toContain(name);
    }
  });
});
