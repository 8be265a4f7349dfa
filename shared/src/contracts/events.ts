import { Type, type Static } from 'typebox';
import { MAX_AMOUNT_MINOR } from './money.ts';

/*
 * The event catalogue of docs/design.md, defined once. Each entry names the routing key an
 * event travels under and the schema of its payload; the TypeScript types below and the
 * runtime validators in envelope.ts are both derived from these schemas.
 *
 * Money travels as integer minor units (amountMinor) with an ISO 4217 currency code,
 * exactly as it is stored: no service ever sees a float.
 */

export const Currency = Type.Union([Type.Literal('USD'), Type.Literal('EUR'), Type.Literal('GBP'), Type.Literal('CHF'), Type.Literal('CAD'), Type.Literal('AUD')]);
export type Currency = Static<typeof Currency>;
export const currencies: readonly Currency[] = Currency.anyOf.map((literal) => literal.const);

const Sku = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const Quantity = Type.Integer({ minimum: 1, maximum: 1000 });
export const OrderLine = Type.Object({ sku: Sku, qty: Quantity }, { additionalProperties: false });
export type OrderLine = Static<typeof OrderLine>;
const Lines = Type.Array(OrderLine, { minItems: 1, maxItems: 50 });
const AmountMinor = Type.Integer({ minimum: 0, maximum: MAX_AMOUNT_MINOR });
const Email = Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' });

const Money = { amountMinor: AmountMinor, currency: Currency };

export const CancellationReason = Type.Union([
  Type.Literal('payment_failed'),
  Type.Literal('inventory_failed'),
  Type.Literal('timeout'),
]);
export type CancellationReason = Static<typeof CancellationReason>;

export const PaymentFailureReason = Type.Union([Type.Literal('declined'), Type.Literal('simulated')]);
export const InventoryFailureReason = Type.Union([
  Type.Literal('out_of_stock'),
  Type.Literal('unknown_sku'),
  Type.Literal('simulated'),
]);
export type InventoryFailureReason = Static<typeof InventoryFailureReason>;

const payload = <P extends Parameters<typeof Type.Object>[0]>(properties: P) =>
  Type.Object(properties, { additionalProperties: false });

export const eventCatalogue = {
  OrderCreated: {
    routingKey: 'order.created',
    producer: 'order',
    payload: payload({ customerId: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]), customerEmail: Email, items: Lines, ...Money }),
  },
  PaymentCompleted: {
    routingKey: 'payment.completed',
    producer: 'payment',
    payload: payload({ paymentId: Type.String({ format: 'uuid' }), items: Lines, ...Money }),
  },
  PaymentFailed: {
    routingKey: 'payment.failed',
    producer: 'payment',
    payload: payload({ reason: PaymentFailureReason, ...Money }),
  },
  InventoryReserved: {
    routingKey: 'inventory.reserved',
    producer: 'inventory',
    payload: payload({ reservationId: Type.String({ format: 'uuid' }), items: Lines }),
  },
  InventoryFailed: {
    routingKey: 'inventory.failed',
    producer: 'inventory',
    payload: payload({ reason: InventoryFailureReason, skus: Type.Array(Sku) }),
  },
  PaymentRefundRequested: {
    routingKey: 'payment.refund.requested',
    producer: 'order',
    payload: payload({ reason: CancellationReason }),
  },
  PaymentRefunded: {
    routingKey: 'payment.refunded',
    producer: 'payment',
    payload: payload({ paymentId: Type.String({ format: 'uuid' }), ...Money }),
  },
  OrderConfirmed: {
    routingKey: 'order.confirmed',
    producer: 'order',
    payload: payload({ customerEmail: Email, items: Lines, ...Money }),
  },
  OrderCancelled: {
    routingKey: 'order.cancelled',
    producer: 'order',
    payload: payload({ reason: CancellationReason, customerEmail: Email, items: Lines, ...Money }),
  },
} as const;

export type EventCatalogue = typeof eventCatalogue;
export type EventType = keyof EventCatalogue;
export type EventPayload<T extends EventType> = Static<EventCatalogue[T]['payload']>;
export const eventTypes = Object.keys(eventCatalogue) as EventType[];

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && Object.hasOwn(eventCatalogue, value);
}

export function routingKeyOf(type: EventType): string {
  return eventCatalogue[type].routingKey;
}
