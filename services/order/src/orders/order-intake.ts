import { classifyFailure, HttpError, SerialBatches, type Outbox } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import { acceptOrders, type AcceptOutcome, type Acceptance, type OrderRequest } from './accept.ts';

export interface OrderIntakeOptions {
  outbox: Outbox<OrderTables>;
  sagaTimeoutMs: number;
  /** Requests accepted in one transaction at most; 1 gives every request its own. */
  maxBatch?: number;
  /** Records how many requests each transaction accepted (a prom-client Histogram). */
  batchSizes?: { observe(value: number): void };
}

interface Waiting {
  request: OrderRequest;
  resolve(acceptance: Acceptance): void;
  reject(error: unknown): void;
}

/**
 * Accepts orders the way the kit's consumer applies messages (SerialBatches): requests
 * that arrive while an accept transaction is running are accepted together in the next one
 * (up to maxBatch), one statement for all their rows and one outbox insert for all their events. BEGIN, the
 * statements and COMMIT are round trips, most of what a request costs, so under load a batch
 * pays them once for many requests; under light load a request still gets a transaction of
 * its own at once, with nothing to wait for. One transaction runs at a time, so batches of
 * one process never wait on each other's keys.
 *
 * If a statement of a batch fails, each of its requests is accepted in a transaction of its
 * own, so only the one at fault gets the error. If the connection fails, every request of the
 * batch gets that error rather than a second try: the COMMIT may have gone through unseen, and
 * a request without an Idempotency-Key would then be written twice. POST /orders answers it
 * with a 503 that says so (the order may exist) and points to the Idempotency-Key.
 */
export class OrderIntake {
  private readonly batches: SerialBatches<Waiting>;
  private stopped = false;

  constructor(private readonly options: OrderIntakeOptions) {
    this.batches = new SerialBatches(options.maxBatch ?? 64, (batch) => (batch.length === 1 ? this.acceptAlone(batch[0]!) : this.acceptBatch(batch)));
  }

  accept(request: OrderRequest): Promise<Acceptance> {
    if (this.stopped) return Promise.reject(new HttpError(503, 'unavailable', 'the service is shutting down; retry shortly'));
    return new Promise((resolve, reject) => this.batches.add({ request, resolve, reject }));
  }

  /** Takes no more requests, and resolves once every request it took has its answer. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.batches.idle();
  }

  private async acceptBatch(batch: readonly Waiting[]): Promise<void> {
    let outcomes: AcceptOutcome[];
    try {
      outcomes = await this.acceptAll(batch);
    } catch (error) {
      if (classifyFailure(error) === 'infrastructure') {
        for (const waiting of batch) waiting.reject(error);
        return;
      }
      // A statement failed, so nothing was committed. Each on its own, all at once as they would have been without batching.
      await Promise.all(batch.map((waiting) => this.acceptAlone(waiting)));
      return;
    }
    batch.forEach((waiting, index) => settle(waiting, outcomes[index]!));
  }

  private async acceptAlone(waiting: Waiting): Promise<void> {
    try {
      const [outcome] = await this.acceptAll([waiting]);
      settle(waiting, outcome!);
    } catch (error) {
      waiting.reject(error);
    }
  }

  private acceptAll(batch: readonly Waiting[]): Promise<AcceptOutcome[]> {
    this.options.batchSizes?.observe(batch.length);
    return acceptOrders(
      this.options.outbox,
      batch.map((waiting) => waiting.request),
      this.options.sagaTimeoutMs,
    );
  }
}

function settle(waiting: Waiting, outcome: AcceptOutcome): void {
  if ('refused' in outcome) waiting.reject(outcome.refused);
  else waiting.resolve(outcome.accepted);
}
