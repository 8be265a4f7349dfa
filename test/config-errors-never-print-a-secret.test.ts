/**
 * A bad setting stops startup with one line naming the variable, and that line never holds
 * a password or a token: the URLs carry credentials and ADMIN_TOKEN is one, so a malformed
 * value is described, not echoed. Checked through configOrExit with each service's own
 * settings, as its main calls it.
 */
import { configOrExit, loadConfig } from '@checkout-saga/shared/internal';
import { inventorySettings } from '@checkout-saga/inventory';
import { notificationSettings } from '@checkout-saga/notification';
import { paymentSettings } from '@checkout-saga/payment';
import type { TProperties } from 'typebox';
import { Type } from 'typebox';
import { expect, test, vi } from 'vitest';

const SECRET = 'Hunter2-s3cret';

const cases: { variable: string; settings: TProperties; value: string }[] = [
  // A scheme the service does not speak.
  { variable: 'DATABASE_URL', settings: paymentSettings, value: `mysql://admin:${SECRET}@db:3306/payments` },
  // The right scheme, but not a URL at all (a port that is not a number).
  { variable: 'DATABASE_URL', settings: paymentSettings, value: `postgres://admin:${SECRET}@db:five-four-three-two/payments` },
  { variable: 'RABBITMQ_URL', settings: paymentSettings, value: `http://admin:${SECRET}@rabbit:5672` },
  { variable: 'SMTP_URL', settings: notificationSettings, value: `mail.example.com:587 user=orders password=${SECRET}` },
  { variable: 'SMTP_URL', settings: notificationSettings, value: `smtp://orders:${SECRET}@mail.example.com:submission` },
  { variable: 'ADMIN_TOKEN', settings: inventorySettings, value: SECRET.slice(0, 5) },
  { variable: 'ADMIN_TOKEN', settings: inventorySettings, value: `${SECRET}`.repeat(40) },
];

class Exited extends Error {
  constructor(readonly code: number | string | null | undefined) {
    super(`process.exit(${code})`);
  }
}

/** Calls configOrExit in this process, with exit and stderr intercepted. */
function configOrExitHere(settings: TProperties, env: Record<string, string>) {
  const stderr: string[] = [];
  const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Exited(code);
  });
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr.push(String(chunk));
    return true;
  });
  try {
    configOrExit(settings, env);
    return { code: undefined, stderr: stderr.join('') };
  } catch (error) {
    if (!(error instanceof Exited)) throw error;
    return { code: error.code, stderr: stderr.join('') };
  } finally {
    exit.mockRestore();
    write.mockRestore();
  }
}

test.each(cases)('a malformed $variable stops startup with one line naming it, without its value ($value)', ({ variable, settings, value }) => {
  const { code, stderr } = configOrExitHere(settings, { [variable]: value });
  expect(code).toBe(78);
  expect(stderr).toMatch(new RegExp(`^configuration error: ${variable} [^\\n]*\\n$`));
  expect(stderr).not.toContain(SECRET.slice(0, 5));
  expect(stderr).toContain('expected');
});

test('the URLs the services are documented with are still accepted', () => {
  const load = (settings: TProperties, env: Record<string, string>) => () => loadConfig(Type.Object(settings), env);
  for (const url of ['postgres://postgres@127.0.0.1:5432/checkout_payment', 'postgresql://app:p%40ss@db.internal/payments?sslmode=require', 'postgres:///payments?host=/var/run/postgresql']) {
    expect(load(paymentSettings, { DATABASE_URL: url }), url).not.toThrow();
  }
  for (const url of ['amqp://guest:guest@127.0.0.1:5672', 'amqps://app:secret@rabbit.example.com:5671/checkout']) {
    expect(load(paymentSettings, { RABBITMQ_URL: url }), url).not.toThrow();
  }
  for (const url of ['smtp://127.0.0.1:2525', 'smtps://orders:secret@mail.example.com:465']) {
    expect(load(notificationSettings, { SMTP_URL: url }), url).not.toThrow();
  }
  expect(load(inventorySettings, { ADMIN_TOKEN: 'a-long-enough-token' })).not.toThrow();
});

test('a bad setting that is no secret is still shown as given', () => {
  const { stderr } = configOrExitHere(paymentSettings, { CONSUMER_PREFETCH: 'lots' });
  expect(stderr).toContain('CONSUMER_PREFETCH is "lots"');
});
