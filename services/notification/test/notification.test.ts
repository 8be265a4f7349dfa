import { newEvent, type CancellationReason } from '@checkout-saga/shared';
import { waitFor } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNotification, startSmtpSink, type NotificationHarness, type SmtpSink } from './support.ts';

const items = [{ sku: 'KEYBOARD', qty: 2 }, { sku: 'MOUSE', qty: 1 }];
const newSaga = () => ({ sagaId: v7(), orderId: v7() });
const confirmed = (customerEmail: string) => newEvent('OrderConfirmed', newSaga(), { customerEmail, items, amountMinor: 12_550, currency: 'EUR' });
const cancelled = (customerEmail: string, reason: CancellationReason) =>
  newEvent('OrderCancelled', newSaga(), { reason, customerEmail, items, amountMinor: 12_550, currency: 'EUR' });

describe('notification service', () => {
  let smtp: SmtpSink;
  let notification: NotificationHarness;
  const mailsTo = (address: string) => smtp.received.filter((mail) => mail.to.includes(address));
  const oneMailTo = (address: string) => waitFor(() => mailsTo(address)[0], { message: `an email to ${address}` });

  beforeAll(async () => {
    smtp = await startSmtpSink();
    notification = await startNotification('main', { SMTP_URL: smtp.url, MAIL_FROM: 'Shop <orders@shop.test>' });
  });
  afterAll(async () => {
    await notification?.stop();
    await smtp?.close();
  });

  test('OrderConfirmed: one email to the customer saying confirmed, with order id and amount; Message-ID from the event id', async () => {
    const event = confirmed('happy@example.com');
    await notification.publish(event);
    const mail = await oneMailTo('happy@example.com');
    expect(mail.from).toBe('orders@shop.test');
    expect(mail.headers).toMatch(/^From: Shop <orders@shop\.test>$/m);
    expect(mail.subject).toContain('confirmed');
    expect(mail.subject).toContain(event.orderId);
    expect(mail.body).toContain(event.orderId);
    expect(mail.body).toContain('125.50 EUR');
    expect(mail.body).toContain('2 x KEYBOARD');
    expect(mail.messageId).toBe(`<${event.eventId}@checkout-saga>`);
    expect(mailsTo('happy@example.com')).toHaveLength(1);
  });

  test.each([
    ['payment_failed', /payment failed/],
    ['inventory_failed', /out of stock or inventory problem/],
    ['timeout', /timed out/],
  ] as const)('OrderCancelled (%s): one email saying cancelled and why', async (reason, why) => {
    const address = `${reason}@example.com`;
    const event = cancelled(address, reason);
    await notification.publish(event);
    const mail = await oneMailTo(address);
    expect(mail.subject).toContain('cancelled');
    expect(mail.subject).toMatch(why);
    expect(mail.body).toContain('cancelled');
    expect(mail.body).toContain(event.orderId);
    expect(mail.body).toContain('125.50 EUR');
    expect(mail.messageId).toBe(`<${event.eventId}@checkout-saga>`);
    expect(mailsTo(address)).toHaveLength(1);
  });

  test('a duplicate delivery sends a second copy with the same Message-ID, so it is recognisable downstream', async () => {
    const event = confirmed('twice@example.com');
    await notification.publish(event, event);
    const mails = await waitFor(() => (mailsTo('twice@example.com').length === 2 ? mailsTo('twice@example.com') : undefined), { message: 'two copies' });
    expect(new Set(mails.map((mail) => mail.messageId))).toEqual(new Set([`<${event.eventId}@checkout-saga>`]));
  });

  test('an SMTP server that refuses the message (451) gets it again on the retry', async () => {
    smtp.rejectNext(1);
    const event = cancelled('retry@example.com', 'timeout');
    await notification.publish(event);
    const mail = await oneMailTo('retry@example.com');
    expect(mail.messageId).toBe(`<${event.eventId}@checkout-saga>`);
    expect(mailsTo('retry@example.com')).toHaveLength(1);
  });
});

test('without SMTP_URL the service still consumes (and logs the email); it serves only health, ready and metrics', async () => {
  const notification = await startNotification('nosmtp', {});
  try {
    await notification.publish(confirmed('nobody@example.com'));
    await waitFor(async () => /messages_total\{[^}]*handler="notification.confirmed"[^}]*outcome="handled"/.test(await (await fetch(`${notification.url}/metrics`)).text()), {
      message: 'the event to be handled',
    });
    expect((await fetch(`${notification.url}/health`)).status).toBe(200);
    expect((await fetch(`${notification.url}/ready`)).status).toBe(200);
    expect((await fetch(`${notification.url}/payments/${v7()}`)).status).toBe(404);
  } finally {
    await notification.stop();
  }
});
