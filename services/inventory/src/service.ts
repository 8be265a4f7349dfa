import type { ServiceDefinition } from '@checkout-saga/shared';
import type { InventoryTables } from './db.ts';
import { commitOnOrderConfirmed } from './handlers/commit.ts';
import { releaseOnOrderCancelled } from './handlers/release.ts';
import { reserveOnPaymentCompleted } from './handlers/reserve.ts';
import { productRoutes } from './http/routes.ts';
import type { InventoryConfig } from './settings.ts';

/** Reserves on PaymentCompleted, commits on OrderConfirmed, releases on OrderCancelled; the product catalogue over HTTP. */
export const inventoryService: ServiceDefinition<InventoryTables, InventoryConfig> = {
  name: 'inventory',
  handlers: ({ config }) => [reserveOnPaymentCompleted(config), commitOnOrderConfirmed(), releaseOnOrderCancelled()],
  routes: (app, { db, config }) => productRoutes(app, db, config.ADMIN_TOKEN),
};
