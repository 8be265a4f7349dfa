import { newEvent } from '@checkout-saga/shared';
import { expect, test } from 'vitest';
import { composeEmail } from '../src/domain/email.ts';

const saga = { sagaId: '0190a000-0000-7000-8000-000000000001', orderId: '0190a000-0000-7000-8000-000000000002' };
const items = [{ sku: 'MONITOR', qty: 1 }];

test('a confirmation names the order and its amount with two decimals', () => {
  const event = newEvent('OrderConfirmed', saga, { customerEmail: 'a@b.co', items, amountMinor: 5, currency: 'USD' });
  const email = composeEmail(event);
  expect(email).toMatchObject({ to: 'a@b.co', subject: `Your order ${saga.orderId} is confirmed`, messageId: `<${event.eventId}@checkout-saga>` });
  expect(email.text).toContain('Amount: 0.05 USD');
  expect(email.text).toContain('1 x MONITOR');
});

test('a cancellation says why, and whether money comes back', () => {
  const cancel = (reason: 'payment_failed' | 'inventory_failed' | 'timeout') =>
    composeEmail(newEvent('OrderCancelled', saga, { reason, customerEmail: 'a@b.co', items, amountMinor: 32_900, currency: 'GBP' }));
  expect(cancel('payment_failed').subject).toBe(`Your order ${saga.orderId} was cancelled: payment failed`);
  expect(cancel('payment_failed').text).toContain('not been charged');
  expect(cancel('inventory_failed').subject).toMatch(/out of stock or inventory problem$/);
  expect(cancel('inventory_failed').text).toContain('refunded');
  expect(cancel('timeout').subject).toMatch(/timed out$/);
  expect(cancel('timeout').text).toContain('Amount: 329.00 GBP');
});
