import type { CancellationReason, Currency, EventPayload, OrderLine } from '@checkout-saga/shared';

/*
 * The checkout saga as a pure state machine: given the saga as it is and what happened,
 * the next state and the payloads of the events to emit. No I/O, no clock, no ids; the
 * handlers and the timeout checker do that around it (src/saga/transition.ts).
 *
 *   PAYMENT_PENDING   --PaymentCompleted-->  INVENTORY_PENDING
 *   INVENTORY_PENDING --InventoryReserved--> CONFIRMED                   + OrderConfirmed
 *   PAYMENT_PENDING   --PaymentFailed----->  CANCELLED(payment_failed)   + OrderCancelled
 *   INVENTORY_PENDING --InventoryFailed--->  REFUND_PENDING              + PaymentRefundRequested(inventory_failed)
 *   REFUND_PENDING    --PaymentRefunded--->  CANCELLED(inventory_failed) + OrderCancelled
 *   any non-terminal  --Timeout----------->  CANCELLED(timeout)          + OrderCancelled
 *
 * Out of order: inventory only reserves or fails after a payment completed, so an inventory
 * outcome seen while PAYMENT_PENDING (its PaymentCompleted still in retry) implies the payment:
 *   PAYMENT_PENDING   --InventoryReserved--> CONFIRMED                   + OrderConfirmed
 *   PAYMENT_PENDING   --InventoryFailed--->  REFUND_PENDING              + PaymentRefundRequested(inventory_failed)
 *
 * Anything else (a late event for a finished saga, a PaymentCompleted arriving after the
 * inventory outcome it caused, an event that contradicts the state) changes nothing and
 * emits nothing; the caller still records it in the saga's history. A saga that is stuck
 * because an expected event never comes is finished by the timeout.
 */

export const sagaStates = ['PAYMENT_PENDING', 'INVENTORY_PENDING', 'REFUND_PENDING', 'CONFIRMED', 'CANCELLED'] as const;
export type SagaState = (typeof sagaStates)[number];
export const terminalStates: readonly SagaState[] = ['CONFIRMED', 'CANCELLED'];
export const nonTerminalStates: readonly SagaState[] = sagaStates.filter((state) => !terminalStates.includes(state));

export function isTerminal(state: SagaState): boolean {
  return terminalStates.includes(state);
}

/** The events the saga reacts to: the five it consumes, and its own timeout. */
export const sagaInputTypes = ['PaymentCompleted', 'PaymentFailed', 'InventoryReserved', 'InventoryFailed', 'PaymentRefunded', 'Timeout'] as const;
export type SagaInputType = (typeof sagaInputTypes)[number];
export type ConsumedEventType = Exclude<SagaInputType, 'Timeout'>;
export interface SagaInput {
  type: SagaInputType;
}

/** What decide needs to know about the order to write the payloads it emits. */
export interface SagaOrder {
  customerId: string | null;
  customerEmail: string;
  items: OrderLine[];
  amountMinor: number;
  currency: Currency;
}

export interface SagaSnapshot {
  state: SagaState;
  reason: CancellationReason | null;
  order: SagaOrder;
}

type EmittedType = 'OrderCreated' | 'PaymentRefundRequested' | 'OrderConfirmed' | 'OrderCancelled';
export type Emission = { [K in EmittedType]: { type: K; payload: EventPayload<K> } }[EmittedType];

export type TransitionLabel =
  | 'created'
  | 'payment_completed'
  | 'inventory_reserved'
  | 'inventory_reserved_before_payment'
  | 'payment_failed'
  | 'inventory_failed'
  | 'inventory_failed_before_payment'
  | 'refunded'
  | 'timed_out'
  | 'late_event'
  | 'unexpected_event';

export interface Decision {
  state: SagaState;
  reason: CancellationReason | null;
  /** Payloads to emit, in order, in the same transaction. */
  events: Emission[];
  /** Which rule applied; `late_event` and `unexpected_event` are the no-ops. */
  transition: TransitionLabel;
  /** True when the saga changed state. */
  changed: boolean;
  /** True for steps of the compensation path: asking for a refund, the refund, and a timeout (which makes participants undo their work). */
  compensation: boolean;
}

/** The first step: a new saga waits for the payment and announces the order. */
export function begin(order: SagaOrder): Decision {
  return {
    state: 'PAYMENT_PENDING',
    reason: null,
    events: [
      {
        type: 'OrderCreated',
        payload: {
          customerId: order.customerId,
          customerEmail: order.customerEmail,
          items: order.items,
          amountMinor: order.amountMinor,
          currency: order.currency,
        },
      },
    ],
    transition: 'created',
    changed: true,
    compensation: false,
  };
}

export function decide(saga: SagaSnapshot, input: SagaInput): Decision {
  const { state } = saga;
  if (isTerminal(state)) return stay(saga, 'late_event');

  switch (input.type) {
    case 'PaymentCompleted':
      return state === 'PAYMENT_PENDING' ? move('INVENTORY_PENDING', null, [], 'payment_completed', false) : stay(saga, 'unexpected_event');

    case 'InventoryReserved':
      if (state === 'INVENTORY_PENDING') return move('CONFIRMED', null, [confirmed(saga.order)], 'inventory_reserved', false);
      if (state === 'PAYMENT_PENDING') return move('CONFIRMED', null, [confirmed(saga.order)], 'inventory_reserved_before_payment', false);
      return stay(saga, 'unexpected_event');

    case 'PaymentFailed':
      return state === 'PAYMENT_PENDING'
        ? move('CANCELLED', 'payment_failed', [cancelled(saga.order, 'payment_failed')], 'payment_failed', false)
        : stay(saga, 'unexpected_event');

    case 'InventoryFailed':
      if (state === 'INVENTORY_PENDING') return move('REFUND_PENDING', null, [refundRequested()], 'inventory_failed', true);
      if (state === 'PAYMENT_PENDING') return move('REFUND_PENDING', null, [refundRequested()], 'inventory_failed_before_payment', true);
      return stay(saga, 'unexpected_event');

    case 'PaymentRefunded':
      return state === 'REFUND_PENDING'
        ? move('CANCELLED', 'inventory_failed', [cancelled(saga.order, 'inventory_failed')], 'refunded', true)
        : stay(saga, 'unexpected_event');

    case 'Timeout':
      return move('CANCELLED', 'timeout', [cancelled(saga.order, 'timeout')], 'timed_out', true);
  }
}

function move(state: SagaState, reason: CancellationReason | null, events: Emission[], transition: TransitionLabel, compensation: boolean): Decision {
  return { state, reason, events, transition, changed: true, compensation };
}

function stay(saga: SagaSnapshot, transition: 'late_event' | 'unexpected_event'): Decision {
  return { state: saga.state, reason: saga.reason, events: [], transition, changed: false, compensation: false };
}

function confirmed(order: SagaOrder): Emission {
  return {
    type: 'OrderConfirmed',
    payload: { customerEmail: order.customerEmail, items: order.items, amountMinor: order.amountMinor, currency: order.currency },
  };
}

function cancelled(order: SagaOrder, reason: CancellationReason): Emission {
  return {
    type: 'OrderCancelled',
    payload: { reason, customerEmail: order.customerEmail, items: order.items, amountMinor: order.amountMinor, currency: order.currency },
  };
}

function refundRequested(): Emission {
  return { type: 'PaymentRefundRequested', payload: { reason: 'inventory_failed' } };
}

/** The order's public status for a saga state. */
export function orderStatusOf(state: SagaState): 'PENDING' | 'CONFIRMED' | 'CANCELLED' {
  return state === 'CONFIRMED' || state === 'CANCELLED' ? state : 'PENDING';
}
