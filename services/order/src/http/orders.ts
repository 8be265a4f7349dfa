import { CancellationReason, classifyFailure, continueTrace, currencies, errorResponses, formatMinor, HttpError, OrderLine, readAmount, type Currency, type HttpApp, type ServiceContext } from '@checkout-saga/shared';
import type { Selectable } from 'kysely';
import { Type, type TSchema } from 'typebox';
import type { OrdersTable, OrderStatus, OrderTables } from '../db.ts';
import type { Acceptance, OrderRequest } from '../orders/accept.ts';
import type { OrderConfig } from '../settings.ts';

/* The constraints of the OrderCreated payload, so an accepted request always makes a valid event. */
const Email = Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' });
const CurrencyCode = Type.Unsafe<Currency>({ type: 'string', enum: [...currencies] });
/** A JSON number or a decimal string; its digits are checked by readAmount, which never uses a float. */
const Amount = Type.Unsafe<number | string>({ type: ['number', 'string'], maxLength: 32 });

export const CreateOrderBody = Type.Object(
  {
    customerId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    customerEmail: Email,
    items: Type.Array(OrderLine, { minItems: 1, maxItems: 50 }),
    amount: Amount,
    currency: Type.Optional(CurrencyCode),
  },
  {
    additionalProperties: false,
    examples: [{ customerId: 'customer-42', customerEmail: 'ada@example.com', items: [{ sku: 'KEYBOARD', qty: 1 }], amount: '89.99', currency: 'USD' }],
  },
);

const CreateOrderHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'A retry with the same key and body replays the first response; a different body is refused with 409' }),
  ),
});

const OrderParams = Type.Object({ orderId: Type.String({ format: 'uuid', examples: ['01930f6e-5a2b-7c3d-8e4f-0123456789ab'] }) });

const orderStatuses: readonly OrderStatus[] = ['PENDING', 'CONFIRMED', 'CANCELLED'];
const ListOrdersQuery = Type.Object({
  status: Type.Optional(Type.Unsafe<OrderStatus>({ type: 'string', enum: [...orderStatuses] })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, examples: [20] })),
});

const Nullable = <T extends TSchema>(type: T) => Type.Union([type, Type.Null()]);
const DecimalAmount = Type.String({ pattern: '^\\d+\\.\\d{2}$', description: 'Two decimals, e.g. "125.50"' });

export const OrderView = Type.Object(
  {
    orderId: Type.String({ format: 'uuid' }),
    sagaId: Type.String({ format: 'uuid' }),
    status: Type.Unsafe<OrderStatus>({ type: 'string', enum: [...orderStatuses] }),
    reason: Nullable(CancellationReason),
    customerId: Nullable(Type.String()),
    customerEmail: Type.String(),
    items: Type.Array(OrderLine),
    amount: DecimalAmount,
    currency: CurrencyCode,
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'An order and where its saga has got to' },
);

const OrderAccepted = Type.Object(
  {
    status: Type.Literal('accepted'),
    orderId: Type.String({ format: 'uuid' }),
    sagaId: Type.String({ format: 'uuid' }),
    message: Type.String(),
  },
  {
    additionalProperties: false,
    description: 'Accepted: the saga runs from here; the Location header names the order',
    headers: {
      location: Type.String({ description: 'GET it to follow the order: /orders/{orderId}' }),
      'idempotent-replayed': Type.Literal('true', { description: "Present when this is an earlier request's response, replayed for its Idempotency-Key" }),
    },
  },
);

/** An order as every response shows it: amounts as two-decimal strings, times as ISO-8601. */
export function orderView(row: Selectable<OrdersTable>) {
  return {
    orderId: row.order_id,
    sagaId: row.saga_id,
    status: row.status,
    reason: row.reason,
    customerId: row.customer_id,
    customerEmail: row.customer_email,
    items: row.items.map(({ sku, qty }) => ({ sku, qty })), // jsonb reorders keys
    amount: formatMinor(row.amount_minor),
    currency: row.currency,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * The answer to a POST /orders whose transaction met a connection failure. The failure may
 * have come after the database committed (the COMMIT went through, its answer did not come
 * back), and nothing here can tell: the order may exist, and its OrderCreated is then
 * published and the saga runs. Only the Idempotency-Key makes the retry safe.
 */
function outcomeUnknown(idempotencyKey: string | undefined) {
  const retry = idempotencyKey
    ? 'retry with the same Idempotency-Key: you get this order if it was accepted, and one new order if it was not'
    : 'this request had no Idempotency-Key, so a retry may create a second order: send one with every order, the same on each retry, to retry safely';
  return {
    error: 'outcome_unknown',
    message: `the database connection failed while the order was being accepted, so it may have been accepted (and will then be processed); ${retry}`,
    details: { mayHaveBeenAccepted: true, idempotencyKey: idempotencyKey ?? null },
  };
}

/** Where POST /orders hands a request: the order intake (orders accepted together), or acceptOrder alone. */
export interface Intake {
  submit(request: OrderRequest): Promise<Acceptance>;
}

/** POST /orders (accepted through `intake`), GET /orders/:orderId, GET /orders?status=&limit= */
export function orderRoutes(app: HttpApp, { db }: ServiceContext<OrderTables, OrderConfig>, intake: Intake): void {
  app.post(
    '/orders',
    {
      schema: {
        summary: 'Place an order: starts its checkout saga',
        body: CreateOrderBody,
        headers: CreateOrderHeaders,
        response: {
          202: OrderAccepted,
          ...errorResponses({
            409: 'The Idempotency-Key was already used for a different body',
            503: 'outcome_unknown: the database connection failed while the order was being accepted, so it may have been accepted; retry with the same Idempotency-Key',
          }),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const amount = readAmount(body.amount);
      if (!amount.ok) {
        throw new HttpError(400, 'validation_failed', `body.amount ${amount.error}`, [{ path: '/amount', message: amount.error }]);
      }
      const idempotencyKey = request.headers['idempotency-key'];
      const accepting = intake.submit({
        order: {
          customerId: body.customerId ?? null,
          customerEmail: body.customerEmail,
          items: body.items.map(({ sku, qty }) => ({ sku, qty })),
          amountMinor: amount.minor,
          currency: body.currency ?? 'USD',
        },
        idempotencyKey,
        // The saga's trace starts here (or continues the caller's) and travels with every event.
        traceparent: continueTrace(request.headers.traceparent),
      });
      let accepted: Acceptance;
      try {
        accepted = await accepting;
      } catch (error) {
        if (classifyFailure(error) !== 'infrastructure') throw error;
        return reply.status(503).header('retry-after', '1').send(outcomeUnknown(idempotencyKey));
      }
      if (accepted.replayed) reply.header('idempotent-replayed', 'true');
      // Always 202 (a replay returns the 202 that was stored); the cast keeps the stored value the one sent.
      return reply.status(accepted.statusCode as 202).header('location', `/orders/${accepted.body.orderId}`).send(accepted.body);
    },
  );

  const getOrder = { summary: 'One order', params: OrderParams, response: { 200: OrderView, ...errorResponses({ 404: 'No such order' }) } };
  app.get('/orders/:orderId', { schema: getOrder }, async (request) => {
    const row = await db.selectFrom('orders').selectAll().where('order_id', '=', request.params.orderId).executeTakeFirst();
    if (!row) throw new HttpError(404, 'not_found', `no order ${request.params.orderId}`);
    return orderView(row);
  });

  const listOrders = { summary: 'The newest orders, newest first', querystring: ListOrdersQuery, response: { 200: Type.Object({ orders: Type.Array(OrderView) }, { description: 'Up to `limit` orders, newest first' }) } };
  app.get('/orders', { schema: listOrders }, async (request) => {
    const { status, limit = 50 } = request.query;
    let query = db.selectFrom('orders').selectAll().orderBy('created_at', 'desc').orderBy('order_id', 'desc').limit(limit);
    if (status) query = query.where('status', '=', status);
    const rows = await query.execute();
    return { orders: rows.map(orderView) };
  });
}
