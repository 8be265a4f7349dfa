import { Currency, errorResponses, formatMinor, HttpError, type HttpApp } from '@checkout-saga/shared';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { Payment, PaymentTables } from '../db.ts';

const Params = Type.Object({ orderId: Type.String({ format: 'uuid', examples: ['01930f6e-5a2b-7c3d-8e4f-0123456789ab'] }) });

const PaymentView = Type.Object(
  {
    orderId: Type.String({ format: 'uuid' }),
    status: Type.Union([Type.Literal('COMPLETED'), Type.Literal('FAILED'), Type.Literal('REFUNDED'), Type.Literal('SKIPPED')]),
    amount: Type.String({ pattern: '^\\d+\\.\\d{2}$', description: 'Two decimals, e.g. "125.50"' }),
    currency: Currency,
    createdAt: Type.String({ format: 'date-time' }),
    refundedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { additionalProperties: false, description: "The order's payment" },
);

export function paymentRoutes(app: HttpApp, db: Kysely<PaymentTables>): void {
  app.get('/payments/:orderId', { schema: { summary: 'The payment of an order', params: Params, response: { 200: PaymentView, ...errorResponses({ 404: 'No payment for this order (yet)' }) } } }, async (request) => {
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
