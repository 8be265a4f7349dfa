/**
 * An SMTP server that cannot be reached is an outage, not a fault of the email: the emails
 * wait (retried without spending their attempts) and each is delivered once when the server
 * is back, none dead-lettered. So does a 421 (the server says it is not available). A server
 * that answers about the message itself (a 5xx refusal, or a 4xx other than 421) still spends
 * the message's attempts and dead-letters it once they are spent.
 */
import { newEvent, type Envelope } from '@checkout-saga/shared';
import { startTcpProxy, testServers, waitFor, type TcpProxy } from '@checkout-saga/shared/testing';
import amqp from 'amqplib';
import { v7 } from 'uuid';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNotification, startSmtpSink, type NotificationHarness, type SmtpSink } from './support.ts';

const MAX_DELIVERY_ATTEMPTS = 3;
const items = [{ sku: 'KEYBOARD', qty: 1 }];
const newSaga = () => ({ sagaId: v7(), orderId: v7() });

let smtp: SmtpSink;
let link: TcpProxy;
let notification: NotificationHarness;

beforeAll(async () => {
  smtp = await startSmtpSink();
  const { port } = new URL(smtp.url);
  link = await startTcpProxy({ host: '127.0.0.1', port: Number(port) });
  notification = await startNotification('smtp-outage', {
    SMTP_URL: link.url(smtp.url),
    SMTP_TIMEOUT_MS: '2000',
    MAX_DELIVERY_ATTEMPTS: String(MAX_DELIVERY_ATTEMPTS),
    RETRY_BASE_DELAY_MS: '50',
  });
});
afterAll(async () => {
  await notification?.stop();
  await link?.close();
  await smtp?.close();
});

/** messages_total for one outcome, summed over the notification handlers. */
async function messages(outcome: string): Promise<number> {
  const text = await (await fetch(`${notification.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('messages_total{') && line.includes(`outcome="${outcome}"`) && line.includes('handler="notification.'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function deadLettersWaiting(): Promise<number> {
  const connection = await amqp.connect((await testServers()).amqpUrl);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(notification.instances[0]!.topology!.deadLetterQueue)).messageCount;
  } finally {
    await connection.close();
  }
}

test('with the SMTP server unreachable, emails wait instead of spending attempts, then each is delivered once and none is dead-lettered', async () => {
  const events: Envelope[] = [
    ...Array.from({ length: 3 }, () => newEvent('OrderConfirmed', newSaga(), { customerEmail: 'outage@example.com', items, amountMinor: 1_000, currency: 'USD' })),
    ...Array.from({ length: 3 }, () => newEvent('OrderCancelled', newSaga(), { reason: 'timeout', customerEmail: 'outage@example.com', items, amountMinor: 1_000, currency: 'USD' })),
  ];
  const retriedBefore = await messages('retried');
  const deadBefore = await messages('dead_lettered');
  link.cut();
  await notification.publish(...events);

  // Long enough that, had the outage spent attempts, every email would have run out of them.
  await waitFor(
    async () => (await messages('retried')) - retriedBefore >= events.length * (MAX_DELIVERY_ATTEMPTS + 1) || (await messages('dead_lettered')) > deadBefore,
    { message: 'each email to fail more times than it has attempts' },
  );
  expect(await messages('dead_lettered'), 'emails dead-lettered during the outage').toBe(deadBefore);
  link.restore();

  const wanted = events.map((event) => `<${event.eventId}@checkout-saga>`);
  await waitFor(() => wanted.every((id) => smtp.received.some((mail) => mail.messageId === id)), { message: 'every email to arrive once the server is back' });
  await waitFor(async () => (await messages('handled')) >= events.length, { message: 'every message to be acknowledged' });
  for (const id of wanted) expect(smtp.received.filter((mail) => mail.messageId === id), id).toHaveLength(1);
  expect(await deadLettersWaiting()).toBe(0);
});

test.each([
  [421, 'waits without spending attempts and is delivered once the server takes mail again', 'delivered'],
  [451, 'spends its attempts and is dead-lettered', 'dead-lettered'],
  [550, 'spends its attempts and is dead-lettered', 'dead-lettered'],
] as const)('a message the server answers with %i %s', async (responseCode, _, ending) => {
  const event = newEvent('OrderConfirmed', newSaga(), { customerEmail: `reply-${responseCode}@example.com`, items, amountMinor: 1_000, currency: 'USD' });
  const messageId = `<${event.eventId}@checkout-saga>`;
  const deadBefore = await messages('dead_lettered');
  smtp.rejectNext(MAX_DELIVERY_ATTEMPTS + 1, responseCode);
  await notification.publish(event);
  if (ending === 'delivered') {
    await waitFor(() => smtp.received.some((mail) => mail.messageId === messageId), { message: 'the email to arrive once the refusals stop' });
    expect(smtp.received.filter((mail) => mail.messageId === messageId)).toHaveLength(1);
    expect(await messages('dead_lettered')).toBe(deadBefore);
  } else {
    await waitFor(async () => (await messages('dead_lettered')) === deadBefore + 1, { message: 'the email to be dead-lettered' });
    expect(smtp.received.filter((mail) => mail.messageId === messageId)).toHaveLength(0);
  }
  smtp.rejectNext(0);
});
