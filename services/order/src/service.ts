import { dashboardRoutes } from '@checkout-saga/dashboard';
import type { ServiceDefinition } from '@checkout-saga/shared';
import { Counter, Histogram } from 'prom-client';
import type { OrderTables } from './db.ts';
import { sagaHandlers } from './handlers/index.ts';
import { orderRoutes, orderView, OrderView } from './http/orders.ts';
import { orderIntake } from './orders/order-intake.ts';
import { sagaRoutes } from './http/sagas.ts';
import { sagaMetricsOf } from './saga/metrics.ts';
import type { OrderConfig } from './settings.ts';
import { TimeoutChecker } from './timeout-checker.ts';

/** The order service: HTTP API, the saga's event handlers, and the saga timeout checker; it serves the dashboard too. */
export const orderService: ServiceDefinition<OrderTables, OrderConfig> = {
  name: 'order',
  handlers: ({ metrics }) => sagaHandlers(sagaMetricsOf(metrics)),
  routes(app, context) {
    const intake = orderIntake({
      outbox: context.outbox,
      sagaTimeoutMs: context.config.SAGA_TIMEOUT_MS,
      batchSizes: new Histogram({
        name: 'order_accept_transaction_requests',
        help: 'POST /orders requests accepted per transaction (those that arrived while the previous one ran)',
        buckets: [1, 2, 4, 8, 16, 32, 64],
        registers: [context.metrics.registry],
      }),
      started: sagaMetricsOf(context.metrics).started,
    });
    // onClose hooks run once the server has stopped taking requests; the batches of those it took finish first.
    app.addHook('onClose', () => intake.stop());
    orderRoutes(app, context, intake);
    sagaRoutes(app, context);
    // In this process, not its own: the page places orders through this origin's POST /orders, and
    // the feed hears this instance's commits at once (and reads the others' from the shared table).
    dashboardRoutes(app, { ...context, orders: { view: orderView, schema: OrderView } });
  },
  // A retry comes within minutes or hours; a key kept forever would only make the table grow.
  retention: ({ config }) => [{ table: 'idempotency_keys', key: 'key', storedAt: 'created_at', keepMs: config.IDEMPOTENCY_KEY_RETENTION_MS }],
  workers: ({ config, outbox, logger, metrics }) => [
    new TimeoutChecker({
      outbox,
      intervalMs: config.TIMEOUT_CHECK_INTERVAL_MS,
      logger: logger.child({ component: 'timeout-checker' }),
      timedOut: new Counter({
        name: 'order_sagas_timed_out_total',
        help: 'Sagas cancelled because they did not finish within SAGA_TIMEOUT_MS',
        registers: [metrics.registry],
      }),
      transitions: sagaMetricsOf(metrics),
    }),
  ],
};
