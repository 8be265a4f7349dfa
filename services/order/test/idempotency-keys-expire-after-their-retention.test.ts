/**
 * An Idempotency-Key is kept for IDEMPOTENCY_KEY_RETENTION_MS (24 h by default) and then
 * forgotten by the service's retention sweep: within it a retry gets the first answer,
 * after it the key is free and makes a new order.
 */
import { ConfigError, loadConfig } from '@checkout-saga/shared/internal';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderSettings } from '../src/index.ts';
import { orderBody, postOrder, startOrderHarness, type OrderHarness } from './support.ts';

const HOUR_MS = 3_600_000;
let harness: OrderHarness;

beforeAll(async () => {
  harness = await startOrderHarness('key_retention', { IDEMPOTENCY_KEY_RETENTION_MS: String(HOUR_MS) });
});

afterAll(async () => {
  await harness?.stop();
});

/** Makes a key look as if it had been stored `ms` ago. */
async function age(key: string, ms: number): Promise<void> {
  await sql`update idempotency_keys set created_at = clock_timestamp() - make_interval(secs => ${ms / 1000}) where key = ${key}`.execute(harness.db);
}

describe('Idempotency-Key retention', () => {
  test('a key within its retention returns the first answer; a key past it is forgotten and the same request makes a new order', async () => {
    const expired = `expired-${v7()}`;
    const kept = `kept-${v7()}`;
    const firstExpired = await postOrder(harness.url, orderBody(), { 'idempotency-key': expired });
    const firstKept = await postOrder(harness.url, orderBody(), { 'idempotency-key': kept });
    expect([firstExpired.status, firstKept.status]).toEqual([202, 202]);
    await age(expired, HOUR_MS + 60_000);
    await age(kept, HOUR_MS - 60_000);

    await harness.service.retention?.sweep();

    const again = await postOrder(harness.url, orderBody(), { 'idempotency-key': expired });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(again.body.orderId).not.toBe(firstExpired.body.orderId);
    const retry = await postOrder(harness.url, orderBody(), { 'idempotency-key': kept });
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(firstKept.body);

    // Forgetting a key forgets only the key: its first order stays.
    const orders = await harness.db.selectFrom('orders').select('order_id').where('order_id', 'in', [firstExpired.body.orderId as string, again.body.orderId as string]).execute();
    expect(orders).toHaveLength(2);
    const keys = await harness.db.selectFrom('idempotency_keys').select(['key', 'order_id']).where('key', 'in', [expired, kept]).orderBy('key').execute();
    expect(keys).toEqual([
      { key: expired, order_id: again.body.orderId },
      { key: kept, order_id: firstKept.body.orderId },
    ]);
  });

  test('the retention is 24 hours unless set, and a retention under a minute stops startup naming the variable', () => {
    const base = { DATABASE_URL: 'postgres://db/orders', RABBITMQ_URL: 'amqp://rabbit' };
    expect(loadConfig(Type.Object(orderSettings), base)).toMatchObject({ IDEMPOTENCY_KEY_RETENTION_MS: 86_400_000 });
    const load = () => loadConfig(Type.Object(orderSettings), { ...base, IDEMPOTENCY_KEY_RETENTION_MS: '1000' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/^IDEMPOTENCY_KEY_RETENTION_MS is "1000": expected milliseconds to keep an Idempotency-Key/);
  });
});
