import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { sql } from 'kysely';
import { newEvent, type Envelope } from '@checkout-saga/shared';
import { startSmtpSink, waitFor, type SmtpSink } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DeadLetterQueues, REFRESH_AFTER_RETURNS, serviceNames, type DeadLetter } from '../scripts/dlq/dead-letters.ts';
import { messageCounts, publishEvents } from './support/broker.ts';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * `npm run dlq` against a running system: real dead letters (a poison message, an event for
 * a saga the order service never created, an email the SMTP server refused on every
 * attempt), and the tool run as a child process with the system's RABBITMQ_URL and
 * QUEUE_PREFIX, as an operator would run it.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const execFileAsync = promisify(execFile);

let system: System;
let smtp: SmtpSink;
let queues: DeadLetterQueues;

beforeAll(async () => {
  smtp = await startSmtpSink();
  // Two attempts, so a refused email is dead-lettered after one retry.
  system = await startSystem('dlq', { notification: { SMTP_URL: smtp.url, MAX_DELIVERY_ATTEMPTS: '2' } });
  queues = await DeadLetterQueues.connect(system.amqpUrl, system.queuePrefix);
});

afterAll(async () => {
  await queues?.close();
  await system?.stop();
  await smtp?.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run dlq -- <args>`, as a child process on the system's broker names. */
async function dlq(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const options = {
    cwd: root,
    env: { ...process.env, RABBITMQ_URL: system.amqpUrl, QUEUE_PREFIX: system.queuePrefix, LOG_LEVEL: 'info', ...env },
  };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/dlq.ts', ...args], options);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** The JSON log lines a run printed (each names its service once: the dead letter's). */
const logLines = (run: Run) =>
  run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      expect(line.match(/"service":/g), line).toHaveLength(1);
      return JSON.parse(line) as Record<string, unknown>;
    });

const listJson = async (...args: string[]) => {
  const run = await dlq(['list', '--json', ...args]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { id: string; service: string; type: string | null; routingKey: string | null; reason: string; handler: string | null; attempts: number | null; firstFailedAt: string | null; deadLetteredAt: string | null }[];
};

/** The dead letters as they are now, read in-process (a waitFor probe needs to be quick). */
const letters = () => queues.list(serviceNames);
const lettersWith = async (id: string) => (await letters()).filter((letter) => letter.id === id);

/** Publishes a raw body to the system's exchange, as a misbehaving producer would. */
async function publishRaw(routingKey: string, body: Buffer, messageId: string): Promise<void> {
  const connection = await amqp.connect(system.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(system.exchange, routingKey, body, { messageId, contentType: 'application/json', persistent: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

const unknownSaga = () => ({ sagaId: v7(), orderId: v7() });

// Each run of the tool is a process that loads the kit: seconds apiece on a busy machine.
describe('npm run dlq', { timeout: 180_000 }, () => {
  const poisonId = v7();
  let stranger: Envelope<'PaymentFailed'>;
  let emailEventId: string;

  test('list: one row per dead letter with service, type, route, reason, attempts and first failure; reading takes nothing away', async () => {
    await publishRaw('payment.failed', Buffer.from('{"eventId": oops'), poisonId);
    stranger = newEvent('PaymentFailed', unknownSaga(), { reason: 'declined', amountMinor: 100, currency: 'EUR' });
    await publishEvents(system, [stranger]);
    // A real order whose confirmation email the SMTP server refuses on both attempts.
    smtp.rejectNext(2);
    const { orderId } = await placeOrder(system, order({ customerEmail: 'replay@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CONFIRMED' });
    const { rows } = await sql<{ id: string }>`select envelope->>'eventId' as id from outbox where envelope->>'orderId' = ${orderId} and envelope->>'type' = 'OrderConfirmed'`.execute(system.orderDb);
    emailEventId = rows[0]!.id;
    await waitFor(async () => (await letters()).length === 3, { message: 'three dead letters' });

    const table = await dlq(['list']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +SERVICE +TYPE +ROUTING KEY +ATTEMPTS +FIRST FAILED AT +REASON$/);
    expect(lines).toHaveLength(4);
    const row = (id: string) => lines.find((line) => line.startsWith(id)) ?? '';
    expect(row(poisonId)).toMatch(/ order +- +payment\.failed +1 +\d{4}-\d\d-\d\dT\S+ +body is not JSON/);
    expect(row(stranger.eventId)).toMatch(new RegExp(` order +PaymentFailed +payment\\.failed +1 +\\S+ +UnknownSagaError: no saga ${stranger.sagaId}`));
    expect(row(emailEventId)).toMatch(/ notification +OrderConfirmed +order\.confirmed +2 +\S+ +.*451/);

    const all = await listJson();
    expect(all.map((letter) => letter.id).sort()).toEqual([poisonId, stranger.eventId, emailEventId].sort());
    const byId = (id: string) => all.find((letter) => letter.id === id)!;
    expect(byId(poisonId)).toMatchObject({ service: 'order', type: null, routingKey: 'payment.failed', attempts: 1, handler: 'none' });
    expect(byId(poisonId).reason).toMatch(/^body is not JSON/);
    expect(byId(stranger.eventId)).toMatchObject({ service: 'order', type: 'PaymentFailed', routingKey: 'payment.failed', attempts: 1, handler: 'order.saga.payment-failed' });
    expect(byId(stranger.eventId).reason).toContain(`no saga ${stranger.sagaId}`);
    const email = byId(emailEventId);
    expect(email).toMatchObject({ service: 'notification', type: 'OrderConfirmed', routingKey: 'order.confirmed', attempts: 2, handler: 'notification.confirmed' });
    expect(email.reason).toMatch(/451/);
    expect(Date.parse(email.firstFailedAt!)).toBeLessThanOrEqual(Date.parse(email.deadLetteredAt!));

    const notification = await listJson('--service', 'notification');
    expect(notification.map((letter) => letter.id)).toEqual([emailEventId]);

    // Four reads later every message is still there, in the queue it was in.
    const after = await letters();
    expect(after.map((letter) => `${letter.service} ${letter.id}`).sort()).toEqual(all.map((letter) => `${letter.service} ${letter.id}`).sort());
  });

  test('reading over and over never brings a dead letter near a delivery limit: it is replaced by a fresh copy in time', async () => {
    const returns = (letter: DeadLetter | undefined) => Number(letter?.headers['x-delivery-count'] ?? letter?.headers['x-acquired-count'] ?? 0);
    let highest = 0;
    for (let read = 0; read < REFRESH_AFTER_RETURNS + 5; read++) {
      const [letter] = await lettersWith(poisonId);
      expect(letter, `read ${read}`).toBeDefined();
      highest = Math.max(highest, returns(letter));
    }
    expect(highest).toBeLessThanOrEqual(REFRESH_AFTER_RETURNS);
    const all = await letters();
    expect(all).toHaveLength(3);
    const [poison] = all.filter((letter) => letter.id === poisonId);
    expect(poison).toMatchObject({ service: 'order', routingKey: 'payment.failed', attempts: 1, handler: 'none' });
    expect(poison!.body.toString()).toBe('{"eventId": oops');
  });

  test('show: the properties, headers and envelope of one dead letter, as JSON; an unknown id exits 1', async () => {
    const shown = await dlq(['show', stranger.eventId]);
    expect(shown.code, shown.stderr).toBe(0);
    const details = JSON.parse(shown.stdout);
    expect(details).toMatchObject({ id: stranger.eventId, service: 'order', queue: `${system.queuePrefix}order.dlq` });
    expect(details.properties).toMatchObject({ messageId: stranger.eventId, type: 'PaymentFailed', correlationId: stranger.sagaId, contentType: 'application/json' });
    expect(details.headers['x-dead-letter-reason']).toContain(`no saga ${stranger.sagaId}`);
    expect(details.headers).toMatchObject({ 'x-attempt': 1, 'x-failed-handler': 'order.saga.payment-failed', 'x-original-routing-key': 'payment.failed', 'x-original-exchange': system.exchange });
    expect(details.headers['x-first-failed-at']).toEqual(expect.any(String));
    expect(details.headers['x-dead-lettered-at']).toEqual(expect.any(String));
    expect(details.envelope).toEqual(stranger);
    expect(shown.stdout).toContain('\n  "headers": {\n'); // pretty-printed

    const poison = await dlq(['show', poisonId]);
    expect(poison.code, poison.stderr).toBe(0);
    expect(JSON.parse(poison.stdout)).toMatchObject({ id: poisonId, body: '{"eventId": oops' });

    const missing = await dlq(['show', v7()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no dead letter/);
  });

  test('replay of the event for an unknown saga sends it back through the order consumer: dead-lettered again, attempt 1, a new failure', async () => {
    const [before] = await lettersWith(stranger.eventId);
    const run = await dlq(['replay', stranger.eventId]);
    expect(run.code, run.stderr).toBe(0);
    expect(logLines(run)).toEqual([
      expect.objectContaining({ msg: 'dead letter replayed', component: 'dlq', id: stranger.eventId, service: 'order', type: 'PaymentFailed', reason: before!.reason, queue: `${system.queuePrefix}order` }),
    ]);
    expect(run.stdout).toMatch(/replayed 1 dead letter\n$/);

    // Dead-lettered again by the consumer (a later x-dead-lettered-at), not left where it was.
    const [again] = await waitFor(
      async () => {
        const found = await lettersWith(stranger.eventId);
        return found.length === 1 && found[0]!.deadLetteredAt! > before!.deadLetteredAt! ? found : undefined;
      },
      { message: 'the replayed event to be dead-lettered again' },
    );
    expect(again).toMatchObject({ service: 'order', attempts: 1, routingKey: 'payment.failed', reason: before!.reason, type: 'PaymentFailed' });
    // Its failure history starts over: the replay dropped the old x-first-failed-at.
    expect(again!.firstFailedAt! > before!.firstFailedAt!).toBe(true);
    expect(JSON.parse(again!.body.toString())).toEqual(stranger);
  });

  test('replay after the cause is fixed: the email arrives exactly once; replaying it again, or any unknown id, finds nothing and publishes nothing', async () => {
    const to = (address: string) => smtp.received.filter((mail) => mail.to.includes(address));
    expect(to('replay@example.com')).toHaveLength(0);

    const run = await dlq(['replay', emailEventId, '--service', 'notification']);
    expect(run.code, run.stderr).toBe(0);
    expect(logLines(run)).toEqual([expect.objectContaining({ msg: 'dead letter replayed', id: emailEventId, service: 'notification', type: 'OrderConfirmed', reason: expect.stringMatching(/451/) })]);
    const mail = await waitFor(() => to('replay@example.com')[0], { message: 'the replayed confirmation email' });
    expect(mail.messageId).toBe(`<${emailEventId}@checkout-saga>`);
    expect(await lettersWith(emailEventId)).toEqual([]);

    const twice = await dlq(['replay', emailEventId]);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toMatch(/not found/);
    expect(logLines(twice)).toEqual([]);

    const unknown = await dlq(['replay', v7()]);
    expect(unknown.code, unknown.stderr).toBe(0);
    expect(unknown.stdout).toMatch(/not found.*nothing replayed/);
    expect(logLines(unknown)).toEqual([]);

    await waitFor(async () => (await messageCounts(system, ['notification'])) === 0, { message: 'the notification queue to drain' });
    expect(to('replay@example.com')).toHaveLength(1);
  });

  test('purge: refuses without --yes (exit 2, lists what it would remove, removes nothing); removes with it', async () => {
    const refused = await dlq(['purge', poisonId]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toMatch(/would remove 1 dead letter:/);
    expect(refused.stdout).toContain(poisonId);
    expect(refused.stdout).toMatch(/--yes/);
    expect(await lettersWith(poisonId)).toHaveLength(1);

    const purged = await dlq(['purge', poisonId, '--yes']);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toMatch(/removed 1 dead letter\n$/);
    expect(await lettersWith(poisonId)).toEqual([]);
    expect(await lettersWith(stranger.eventId)).toHaveLength(1);

    const gone = await dlq(['purge', poisonId, '--yes']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toMatch(/not found/);
  });

  test('--all: replays every dead letter of a service through its consumer, then purges them all', async () => {
    const more = [
      newEvent('InventoryFailed', unknownSaga(), { reason: 'out_of_stock', skus: ['KEYBOARD'] }),
      newEvent('PaymentRefunded', unknownSaga(), { paymentId: v7(), amountMinor: 100, currency: 'EUR' }),
    ];
    await publishEvents(system, more);
    const ids = [stranger.eventId, ...more.map((event) => event.eventId)].sort();
    const before = await waitFor(
      async () => {
        const found = await letters();
        return found.length === 3 ? found : undefined;
      },
      { message: 'three dead letters in the order queue' },
    );
    expect(before.map((letter) => letter.id).sort()).toEqual(ids);

    const replayed = await dlq(['replay', '--all', '--service', 'order']);
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(logLines(replayed).map((line) => line.id).sort()).toEqual(ids);
    expect(replayed.stdout).toMatch(/replayed 3 dead letters\n$/);
    const deadLetteredAt = new Map(before.map((letter) => [letter.id, letter.deadLetteredAt!]));
    const again = await waitFor(
      async () => {
        const found = await letters();
        const fresh = found.filter((letter) => letter.deadLetteredAt! > deadLetteredAt.get(letter.id)!);
        return found.length === 3 && fresh.length === 3 ? found : undefined;
      },
      { message: 'all three replayed events to be dead-lettered again' },
    );
    expect(again.every((letter: DeadLetter) => letter.service === 'order' && letter.attempts === 1)).toBe(true);

    const refused = await dlq(['purge', '--all']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toMatch(/would remove 3 dead letters:/);
    expect(await letters()).toHaveLength(3);

    const purged = await dlq(['purge', '--all', '--yes']);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toMatch(/removed 3 dead letters\n$/);
    expect(logLines(purged).map((line) => line.id).sort()).toEqual(ids);
    expect(await letters()).toEqual([]);

    const empty = await dlq(['list']);
    expect(empty).toMatchObject({ code: 0, stdout: 'no dead letters\n' });
    const nothing = await dlq(['replay', '--all']);
    expect(nothing).toMatchObject({ code: 0, stdout: 'no dead letters; nothing replayed\n' });
  });

  test('the live system went on undisturbed: consumers still ready, a new order is confirmed', async () => {
    for (const service of system.services) expect((await fetch(`${service.url}/ready`)).status).toBe(200);
    const { orderId } = await placeOrder(system, order({ customerEmail: 'after@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CONFIRMED' });
    await waitFor(() => smtp.received.find((mail) => mail.to.includes('after@example.com')), { message: 'the email of a normal order' });
  });
});

describe('npm run dlq: bad command lines and settings', () => {
  test.each([
    [[]],
    [['frob']],
    [['list', 'extra']],
    [['list', '--service', 'billing']],
    [['list', '--bogus']],
    [['show']],
    [['replay']],
    [['replay', 'some-id', '--all']],
    [['purge']],
    [['list', '--yes']],
  ])('%j: a usage message and exit 2', async (args) => {
    const run = await dlq(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^dlq: .+\n\nusage: npm run dlq -- <command>/);
    expect(run.stdout).toBe('');
  });

  test('--help prints the usage and exits 0', async () => {
    const run = await dlq(['--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^usage: npm run dlq -- <command>/);
  });

  test('a bad setting: one line naming it, exit 78', async () => {
    const run = await dlq(['list'], { RABBITMQ_URL: 'http://127.0.0.1:5672' });
    expect(run.code).toBe(78);
    expect(run.stderr).toBe('configuration error: RABBITMQ_URL is not valid (its value is not shown: it may hold a password or token): expected an AMQP URL such as amqp://user:password@host:5672, or the nodes of one cluster separated by commas\n');
    expect(run.stdout).toBe('');
  });
});
