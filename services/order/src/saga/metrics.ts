import type { Metrics } from '@checkout-saga/shared';
import { Counter, Histogram } from 'prom-client';
import type { Decision } from './decide.ts';

/** How old a saga was when a transition applied, read from the database clock as the saga row was locked. */
export interface SagaAges {
  /** Since the saga started (sagas.created_at). */
  sinceStartSeconds: number;
  /** Since its previous transition (sagas.updated_at): the time this step took. */
  sinceLastStepSeconds: number;
}

// From a few milliseconds (everything local) to past the default SAGA_TIMEOUT_MS of 90 s.
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The saga's metrics, recorded where its transitions commit (the Grafana dashboard reads them). */
export function createSagaMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  return {
    started: new Counter({ name: 'order_sagas_started_total', help: 'Sagas started (orders accepted; an idempotent replay starts none)', registers }),
    finished: new Counter({
      name: 'order_sagas_finished_total',
      help: 'Sagas that reached CONFIRMED or CANCELLED, by outcome and cancellation reason (none when confirmed)',
      labelNames: ['outcome', 'reason'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'order_saga_duration_seconds',
      help: 'End to end: from the order accepted to the saga confirmed or cancelled, by outcome and reason',
      labelNames: ['outcome', 'reason'] as const,
      buckets: SECONDS,
      registers,
    }),
    step: new Histogram({
      name: 'order_saga_step_seconds',
      help: "Time from a saga's previous transition to this one, by transition (payment_completed, inventory_reserved, refunded, timed_out...)",
      labelNames: ['transition'] as const,
      buckets: SECONDS,
      registers,
    }),
  };
}

export type SagaMetrics = ReturnType<typeof createSagaMetrics>;

const perRegistry = new WeakMap<Metrics, SagaMetrics>();

/** One set per service registry: the handlers, the intake and the timeout checker share it. */
export function sagaMetricsOf(metrics: Metrics): SagaMetrics {
  let saga = perRegistry.get(metrics);
  if (!saga) perRegistry.set(metrics, (saga = createSagaMetrics(metrics)));
  return saga;
}

/** Records a transition that committed; one that changed nothing (a late or unexpected event) is not a step. */
export function recordTransition(metrics: SagaMetrics, decision: Decision, ages: SagaAges): void {
  if (!decision.changed) return;
  metrics.step.observe({ transition: decision.transition }, ages.sinceLastStepSeconds);
  if (decision.state !== 'CONFIRMED' && decision.state !== 'CANCELLED') return;
  const labels = { outcome: decision.state.toLowerCase(), reason: decision.reason ?? 'none' };
  metrics.finished.inc(labels);
  metrics.duration.observe(labels, ages.sinceStartSeconds);
}
