import type { OrdersTable, OrderTables } from '@checkout-saga/order';
import type { Logger, Metrics, Outbox } from '@checkout-saga/shared';
import type { Kysely, Selectable } from 'kysely';
import type { TSchema } from 'typebox';
import type { DashboardConfig } from './settings.ts';
import type { OrderSummary } from './wire.ts';

/*
 * The dashboard shows the order service's sagas, so it reads what is the order service's. The
 * order package mounts this one, so this file takes only its types from it (import type, erased
 * when run: no import cycle); what it needs at run time, the order service hands over.
 */

/** How the order API shows an order (GET /orders/:orderId): the dashboard shows its orders the same way. */
export interface OrderPresentation {
  view(row: Selectable<OrdersTable>): OrderSummary;
  /** The view's schema, for the OpenAPI document and the response serializer. */
  schema: TSchema;
}

/**
 * What the dashboard reads, all of it the order service's: its database (orders, saga_history
 * and the outbox backlog: OrderTables, the order package's own table types), its commits (to
 * read new saga steps at once), its metrics registry (its retry and dead-letter counters) and
 * how its API shows an order. The order service's ServiceContext is one, plus `orders`.
 */
export interface DashboardSource {
  db: Kysely<OrderTables>;
  outbox: Pick<Outbox<OrderTables>, 'onCommit'>;
  config: DashboardConfig;
  logger: Logger;
  metrics: Metrics;
  orders: OrderPresentation;
}
