import type { ServiceDefinition } from '@checkout-saga/shared';
import type { PaymentTables } from './db.ts';
import { chargeOnOrderCreated } from './handlers/order-created.ts';
import { refundOnOrderCancelled } from './handlers/order-cancelled.ts';
import { refundOnRequest } from './handlers/refund-requested.ts';
import { paymentRoutes } from './http/routes.ts';
import type { PaymentConfig } from './settings.ts';

/** Charges on OrderCreated, refunds on PaymentRefundRequested or OrderCancelled; GET /payments/:orderId. */
export const paymentService: ServiceDefinition<PaymentTables, PaymentConfig> = {
  name: 'payment',
  handlers: ({ config }) => [chargeOnOrderCreated(config), refundOnRequest(), refundOnOrderCancelled()],
  routes: (app, { db }) => paymentRoutes(app, db),
};
