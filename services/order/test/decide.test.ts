import { Compile } from 'typebox/compile';
import { eventCatalogue } from '@checkout-saga/shared/internal';
import { describe, expect, test } from 'vitest';
import {
  begin,
  decide,
  nonTerminalStates,
  orderStatusOf,
  sagaInputTypes,
  sagaStates,
  type Decision,
  type SagaInputType,
  type SagaSnapshot,
  type SagaState,
} from '../src/saga/decide.ts';

const order: SagaSnapshot['order'] = {
  customerId: 'c-1',
  customerEmail: 'ada@example.com',
  items: [
    { sku: 'SKU-1', qty: 2 },
    { sku: 'SKU-2', qty: 1 },
  ],
  amountMinor: 12550,
  currency: 'EUR',
};
const money = { customerEmail: 'ada@example.com', items: order.items, amountMinor: 12550, currency: 'EUR' };

function saga(state: SagaState): SagaSnapshot {
  const reason = state === 'CANCELLED' ? 'payment_failed' : null;
  return { state, reason, order };
}

type Expected = Pick<Decision, 'state' | 'reason' | 'transition' | 'compensation'> & { emits: string[] };
const late = (state: SagaState): Expected => ({
  state,
  reason: state === 'CANCELLED' ? 'payment_failed' : null,
  transition: 'late_event',
  compensation: false,
  emits: [],
});
const unexpected = (state: SagaState): Expected => ({ state, reason: null, transition: 'unexpected_event', compensation: false, emits: [] });
const timedOut: Expected = { state: 'CANCELLED', reason: 'timeout', transition: 'timed_out', compensation: true, emits: ['OrderCancelled'] };

/** Every state × every input: the whole machine, one row each. */
const table: Record<SagaState, Record<SagaInputType, Expected>> = {
  PAYMENT_PENDING: {
    PaymentCompleted: { state: 'INVENTORY_PENDING', reason: null, transition: 'payment_completed', compensation: false, emits: [] },
    PaymentFailed: { state: 'CANCELLED', reason: 'payment_failed', transition: 'payment_failed', compensation: false, emits: ['OrderCancelled'] },
    // Out of order: inventory only acts after a payment completed, whose event is still on its way.
    InventoryReserved: { state: 'CONFIRMED', reason: null, transition: 'inventory_reserved_before_payment', compensation: false, emits: ['OrderConfirmed'] },
    InventoryFailed: { state: 'REFUND_PENDING', reason: null, transition: 'inventory_failed_before_payment', compensation: true, emits: ['PaymentRefundRequested'] },
    PaymentRefunded: unexpected('PAYMENT_PENDING'),
    Timeout: timedOut,
  },
  INVENTORY_PENDING: {
    PaymentCompleted: unexpected('INVENTORY_PENDING'),
    PaymentFailed: unexpected('INVENTORY_PENDING'),
    InventoryReserved: { state: 'CONFIRMED', reason: null, transition: 'inventory_reserved', compensation: false, emits: ['OrderConfirmed'] },
    InventoryFailed: { state: 'REFUND_PENDING', reason: null, transition: 'inventory_failed', compensation: true, emits: ['PaymentRefundRequested'] },
    PaymentRefunded: unexpected('INVENTORY_PENDING'),
    Timeout: timedOut,
  },
  REFUND_PENDING: {
    // The PaymentCompleted that an out-of-order InventoryFailed implied, arriving at last.
    PaymentCompleted: unexpected('REFUND_PENDING'),
    PaymentFailed: unexpected('REFUND_PENDING'),
    InventoryReserved: unexpected('REFUND_PENDING'),
    InventoryFailed: unexpected('REFUND_PENDING'),
    PaymentRefunded: { state: 'CANCELLED', reason: 'inventory_failed', transition: 'refunded', compensation: true, emits: ['OrderCancelled'] },
    Timeout: timedOut,
  },
  CONFIRMED: Object.fromEntries(sagaInputTypes.map((type) => [type, late('CONFIRMED')])) as Record<SagaInputType, Expected>,
  CANCELLED: Object.fromEntries(sagaInputTypes.map((type) => [type, late('CANCELLED')])) as Record<SagaInputType, Expected>,
};

const cases = sagaStates.flatMap((state) => sagaInputTypes.map((input) => [state, input, table[state][input]] as const));

describe('decide: every state × every input', () => {
  test.each(cases)('%s + %s', (state, input, expected) => {
    const decision = decide(saga(state), { type: input });
    expect({
      state: decision.state,
      reason: decision.reason,
      transition: decision.transition,
      compensation: decision.compensation,
      emits: decision.events.map((event) => event.type),
    }).toEqual(expected);
    expect(decision.changed).toBe(expected.state !== state);
  });
});

describe('decide: the events it emits', () => {
  const validators = Object.fromEntries(Object.entries(eventCatalogue).map(([type, entry]) => [type, Compile(entry.payload)]));

  test('every emitted payload is valid for the catalogue', () => {
    for (const [state, input] of cases) {
      for (const event of decide(saga(state), { type: input }).events) {
        expect(validators[event.type]!.Check(event.payload), `${state} + ${input} → ${event.type}`).toBe(true);
      }
    }
    const created = begin(order).events[0]!;
    expect(validators.OrderCreated!.Check(created.payload)).toBe(true);
  });

  test('OrderConfirmed carries the customer email, items and money', () => {
    expect(decide(saga('INVENTORY_PENDING'), { type: 'InventoryReserved' }).events).toEqual([{ type: 'OrderConfirmed', payload: money }]);
  });

  test('OrderCancelled carries the reason and the order', () => {
    expect(decide(saga('PAYMENT_PENDING'), { type: 'PaymentFailed' }).events).toEqual([{ type: 'OrderCancelled', payload: { reason: 'payment_failed', ...money } }]);
    expect(decide(saga('REFUND_PENDING'), { type: 'PaymentRefunded' }).events).toEqual([{ type: 'OrderCancelled', payload: { reason: 'inventory_failed', ...money } }]);
  });

  test('an inventory failure asks for a refund with reason inventory_failed', () => {
    for (const state of ['PAYMENT_PENDING', 'INVENTORY_PENDING'] as const) {
      expect(decide(saga(state), { type: 'InventoryFailed' }).events).toEqual([{ type: 'PaymentRefundRequested', payload: { reason: 'inventory_failed' } }]);
    }
  });

  test.each(nonTerminalStates)('a timeout from %s cancels with reason timeout and OrderCancelled', (state) => {
    const decision = decide(saga(state), { type: 'Timeout' });
    expect(decision).toMatchObject({ state: 'CANCELLED', reason: 'timeout', changed: true, compensation: true });
    expect(decision.events).toEqual([{ type: 'OrderCancelled', payload: { reason: 'timeout', ...money } }]);
  });

  test('a late event keeps a cancelled saga its original reason', () => {
    const cancelled: SagaSnapshot = { state: 'CANCELLED', reason: 'timeout', order };
    for (const type of sagaInputTypes) {
      expect(decide(cancelled, { type })).toEqual({ state: 'CANCELLED', reason: 'timeout', events: [], transition: 'late_event', changed: false, compensation: false });
    }
  });
});

describe('begin and order status', () => {
  test('a new saga waits for payment and announces the order', () => {
    expect(begin(order)).toEqual({
      state: 'PAYMENT_PENDING',
      reason: null,
      events: [{ type: 'OrderCreated', payload: { customerId: 'c-1', ...money } }],
      transition: 'created',
      changed: true,
      compensation: false,
    });
  });

  test('the order is PENDING until the saga ends', () => {
    expect(sagaStates.map(orderStatusOf)).toEqual(['PENDING', 'PENDING', 'PENDING', 'CONFIRMED', 'CANCELLED']);
  });

  test('the happy path and the refund path, step by step', () => {
    const start = begin(order);
    const walk = (inputs: SagaInputType[]) =>
      inputs.reduce<SagaSnapshot>(
        (current, type) => {
          const decision = decide(current, { type });
          return { state: decision.state, reason: decision.reason, order };
        },
        { state: start.state, reason: start.reason, order },
      );
    expect(walk(['PaymentCompleted', 'InventoryReserved'])).toMatchObject({ state: 'CONFIRMED', reason: null });
    expect(walk(['InventoryReserved', 'PaymentCompleted'])).toMatchObject({ state: 'CONFIRMED', reason: null });
    expect(walk(['PaymentCompleted', 'InventoryFailed', 'PaymentRefunded'])).toMatchObject({ state: 'CANCELLED', reason: 'inventory_failed' });
    expect(walk(['InventoryFailed', 'PaymentCompleted', 'PaymentRefunded'])).toMatchObject({ state: 'CANCELLED', reason: 'inventory_failed' });
    expect(walk(['PaymentFailed', 'Timeout'])).toMatchObject({ state: 'CANCELLED', reason: 'payment_failed' });
    expect(walk(['PaymentCompleted', 'Timeout', 'InventoryReserved'])).toMatchObject({ state: 'CANCELLED', reason: 'timeout' });
  });
});
