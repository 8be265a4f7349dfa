import { formatMinor, HttpError, type HttpApp } from '@checkout-saga/shared';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { Payment, PaymentTables } from '../db.ts';

const Params = Type.Object({ orderId: Type.String({ format: 'uuid' }) });

export function paymentRoutes(app: HttpApp, db: Kysely<PaymentTables>): void {
  app.get('/payments/:orderId', { schema: { params: Params } }, async (request) => {
    const payment = await db.selectFrom('payments').selectAll().where('order_id', '=', request.params.orderId).executeTakeFirst();
    if (!payment) throw new HttpError(404, 'not_found', `no payment for order ${request.params.orderId}`);
    return paymentView(payment);
  });
}

/** The public shape of a payment: amounts as two-decimal strings, times as ISO-8601. */
export function paymentView(payment: Payment) {
  return {
    orderId: payment.order_id,
    status: payment.status,
    amount: formatMinor(payment.amount_minor),
    currency: payment.currency,
    createdAt: payment.created_at.toISOString(),
    refundedAt: payment.refunded_at?.toISOString() ?? null,
  };
}
