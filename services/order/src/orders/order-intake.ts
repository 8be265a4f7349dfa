import { GroupCommit, HttpError, type Outbox } from '@checkout-saga/shared';
import type { OrderTables } from '../db.ts';
import type { Acceptance, OrderRequest } from './accept.ts';
import { acceptOrders } from './accept-together.ts';

/** POST /orders requests on their way to the database: `submit` one, get its acceptance or refusal. */
export type OrderIntake = GroupCommit<OrderRequest, Acceptance>;

export interface OrderIntakeOptions {
  outbox: Outbox<OrderTables>;
  sagaTimeoutMs: number;
  /** Requests accepted in one transaction at most; 1 gives every request its own. */
  maxBatch?: number;
  /** Records how many requests each transaction accepted (a prom-client Histogram). */
  batchSizes?: { observe(value: number): void };
  /** Counts the sagas started, once their transaction commits (a prom-client Counter). */
  started?: { inc(value?: number): void };
}

/**
 * Accepts orders with the kit's group commit: requests that arrive while an accept transaction
 * runs are accepted together in the next (acceptOrders), each exactly as acceptOrder would
 * alone. A failure of the connection reaches every request of its group: POST /orders answers
 * it with a 503 that says the order may exist, and points to the Idempotency-Key.
 */
export function orderIntake(options: OrderIntakeOptions): OrderIntake {
  return new GroupCommit({
    maxBatch: options.maxBatch ?? 64,
    onGroup: (size) => options.batchSizes?.observe(size),
    stopped: () => new HttpError(503, 'unavailable', 'the service is shutting down; retry shortly'),
    commit: async (requests) => {
      const outcomes = await acceptOrders(options.outbox, requests, options.sagaTimeoutMs);
      // A replayed Idempotency-Key started nothing; a refused request neither.
      const started = outcomes.filter((outcome) => outcome.ok && !outcome.value.replayed).length;
      if (started > 0) options.started?.inc(started);
      return outcomes;
    },
  });
}
