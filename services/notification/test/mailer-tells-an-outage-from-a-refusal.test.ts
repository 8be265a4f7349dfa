/**
 * The mailer tells an unreachable mail server (an outage: InfrastructureFailure, no attempt
 * spent) from a server that answered about the message (a plain error: an attempt spent),
 * by the codes nodemailer gives its real errors, against real sockets.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createLogger, InfrastructureFailure } from '@checkout-saga/shared/internal';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createMailer } from '../src/mailer.ts';
import { startSmtpSink, type SmtpSink } from './support.ts';

const log = createLogger('test', 'silent');
const email = { to: 'someone@example.com', subject: 'hello', text: 'hello', messageId: '<mailer-test@checkout-saga>' };
const send = (url: string) => createMailer({ SMTP_URL: url, MAIL_FROM: 'shop@example.com', SMTP_TIMEOUT_MS: 300 }).send(email, log);

let smtp: SmtpSink;
let silent: net.Server;
beforeAll(async () => {
  smtp = await startSmtpSink();
  // Accepts connections and never says a word: the greeting times out.
  silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await smtp?.close();
  await new Promise((resolve) => silent?.close(resolve));
});

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

type Failure = Error & { cause?: { code?: string; responseCode?: number } };

async function failure(sending: Promise<void>): Promise<Failure> {
  return sending.then(
    () => {
      throw new Error('the send succeeded');
    },
    (error: unknown) => error as Failure,
  );
}

test('a port that refuses the connection (ESOCKET, connect ECONNREFUSED) is an outage', async () => {
  const error = await failure(send(`smtp://127.0.0.1:${await closedPort()}`));
  expect(error).toBeInstanceOf(InfrastructureFailure);
  expect(error.cause?.code).toBe('ESOCKET');
  expect(error.message).toMatch(/ECONNREFUSED/);
});

test('a server that never greets (ETIMEDOUT) is an outage', async () => {
  const { port } = silent.address() as AddressInfo;
  const error = await failure(send(`smtp://127.0.0.1:${port}`));
  expect(error).toBeInstanceOf(InfrastructureFailure);
  expect(error.cause?.code).toBe('ETIMEDOUT');
});

test('421, the server saying it is not available, is an outage', async () => {
  smtp.rejectNext(1, 421);
  const error = await failure(send(smtp.url));
  expect(error).toBeInstanceOf(InfrastructureFailure);
  expect(error.cause?.responseCode).toBe(421);
});

test.each([451, 452, 550, 554])('%i, an answer about this message, is not an outage: it spends an attempt', async (responseCode) => {
  smtp.rejectNext(1, responseCode);
  const error = await failure(send(smtp.url));
  expect(error).not.toBeInstanceOf(InfrastructureFailure);
  expect((error as { responseCode?: number }).responseCode).toBe(responseCode);
});
