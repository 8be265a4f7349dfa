import type { Logger, Outbox, Worker } from '@checkout-saga/shared';
import { v7 } from 'uuid';
import type { OrderTables } from './db.ts';
import type { Decision } from './saga/decide.ts';
import { recordTransition, type SagaAges, type SagaMetrics } from './saga/metrics.ts';
import { applyToSaga, claimDueSagas } from './saga/store.ts';

export interface TimeoutCheckerOptions {
  outbox: Outbox<OrderTables>;
  intervalMs: number;
  /** Sagas claimed per transaction. */
  batchSize?: number;
  logger: Logger;
  /** Counts sagas cancelled for timeout (a prom-client Counter). */
  timedOut?: { inc(value?: number): void };
  /** Records each cancellation once its transaction commits (the saga's metrics). */
  transitions?: SagaMetrics;
}

/**
 * Cancels sagas whose deadline has passed. Every TIMEOUT_CHECK_INTERVAL_MS it claims a batch
 * of due unfinished sagas FOR UPDATE SKIP LOCKED in one transaction, applies the Timeout
 * input to each (CANCELLED(timeout), history row SagaTimedOut, OrderCancelled), commits, and
 * repeats while batches come back full. Any number of checkers may run on one database: a
 * saga is claimed by one of them, and one that is finished meanwhile no longer matches.
 */
export class TimeoutChecker implements Worker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private scheduled = false;
  private stopping = false;
  private readonly batchSize: number;

  constructor(private readonly options: TimeoutCheckerOptions) {
    this.batchSize = options.batchSize ?? 100;
  }

  start(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.stopping = false;
    this.schedule(0); // sagas that fell due while no checker ran are handled at once
  }

  /** Stops the schedule and waits for a check in progress to commit. */
  async stop(): Promise<void> {
    this.scheduled = false;
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Cancels every saga due now, batch by batch; resolves with how many this checker cancelled. */
  async runOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const cancelled = await this.runBatch();
      total += cancelled;
      if (cancelled < this.batchSize || this.stopping) return total;
    }
  }

  private schedule(delayMs: number): void {
    if (!this.scheduled) return;
    this.timer = setTimeout(() => {
      const run = this.runOnce().catch((error: Error) => {
        this.options.logger.warn({ err: error.message }, 'saga timeout check failed; trying again next interval');
      });
      this.running = run;
      void run.finally(() => {
        this.running = undefined;
        this.schedule(this.options.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async runBatch(): Promise<number> {
    const { outbox, logger } = this.options;
    const applied = await outbox.transaction(async (trx) => {
      const due = await claimDueSagas(trx, this.batchSize);
      const applied: { decision: Decision; ages: SagaAges }[] = [];
      for (const saga of due) {
        const decision = await applyToSaga(trx, saga, { type: 'Timeout' }, v7(), (events) => outbox.enqueue(trx, events));
        logger.info({ sagaId: saga.sagaId, orderId: saga.orderId, from: saga.state, to: decision.state }, 'saga timed out; order cancelled');
        applied.push({ decision, ages: saga.ages });
      }
      return applied;
    });
    if (applied.length > 0) this.options.timedOut?.inc(applied.length);
    const { transitions } = this.options;
    if (transitions) for (const { decision, ages } of applied) recordTransition(transitions, decision, ages);
    return applied.length;
  }
}
