import type { OrderStatus } from '../../src/wire.ts';
import { h, icon } from './dom.ts';

/* Words, icons and numbers as the page shows them. Status is always text plus an icon, never colour alone. */

const statusLook: Record<OrderStatus, { glyph: string; label: string }> = {
  PENDING: { glyph: '◷', label: 'Pending' },
  CONFIRMED: { glyph: '✔', label: 'Confirmed' },
  CANCELLED: { glyph: '✖', label: 'Cancelled' },
};

export const reasonText: Record<string, string> = {
  payment_failed: 'payment failed',
  inventory_failed: 'inventory failed',
  timeout: 'timed out',
};

export function statusBadge(status: OrderStatus): HTMLSpanElement {
  const look = statusLook[status];
  return h('span', { class: `status status-${status.toLowerCase()}` }, icon(look.glyph), ` ${look.label}`);
}

export function statusWords(status: OrderStatus, reason: string | null): string {
  const words = statusLook[status].label.toLowerCase();
  return reason ? `${words} (${reasonText[reason] ?? reason})` : words;
}

const stateLook: Record<string, string> = {
  PAYMENT_PENDING: '◷',
  INVENTORY_PENDING: '◷',
  REFUND_PENDING: '↩',
  CONFIRMED: '✔',
  CANCELLED: '✖',
};

export function stateBadge(state: string): HTMLSpanElement {
  const tone = state === 'CONFIRMED' ? 'confirmed' : state === 'CANCELLED' ? 'cancelled' : state === 'REFUND_PENDING' ? 'compensating' : 'pending';
  return h('span', { class: `state state-${tone}` }, icon(stateLook[state] ?? '•'), ` ${state}`);
}

/** The service that publishes each event type (SagaTimedOut: the order service's timeout checker). */
export function producerOf(type: string): 'order' | 'payment' | 'inventory' {
  if (type.startsWith('Payment') && type !== 'PaymentRefundRequested') return 'payment';
  if (type.startsWith('Inventory')) return 'inventory';
  return 'order';
}

/** What each step means, for people learning the saga. */
export const stepMeaning: Record<string, string> = {
  OrderCreated: 'order accepted; payment is asked to charge',
  PaymentCompleted: 'charged; inventory is asked to reserve',
  PaymentFailed: 'charge declined',
  InventoryReserved: 'every line reserved',
  InventoryFailed: 'stock short or unknown product: nothing held',
  PaymentRefundRequested: 'payment is asked to refund the charge',
  PaymentRefunded: 'charge refunded',
  OrderConfirmed: 'reservation committed; confirmation email',
  OrderCancelled: 'participants undo their work; cancellation email',
  SagaTimedOut: 'the timeout checker: no outcome within SAGA_TIMEOUT_MS',
};

export function shortId(id: string): string {
  return id.slice(-8);
}

const pad = (value: number, length = 2) => String(value).padStart(length, '0');

/** 23:27:24.264 in the browser's time zone. */
export function clock(iso: string): string {
  const date = new Date(iso);
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** +153 ms, +2.4 s */
export function offset(fromIso: string, toIso: string): string {
  const ms = Date.parse(toIso) - Date.parse(fromIso);
  return ms < 1000 ? `+${ms} ms` : `+${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export function count(value: number | null): string {
  return value === null ? '—' : value.toLocaleString('en');
}

/** "148.99" → 14899, exactly (no float). */
export function toMinor(amount: string): number {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(amount.trim());
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

export function fromMinor(minor: number): string {
  return `${Math.floor(minor / 100)}.${pad(minor % 100)}`;
}
