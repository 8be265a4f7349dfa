import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql, type Kysely } from 'kysely';
import { waitFor } from '@checkout-saga/shared/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DashboardState, ServiceCounters } from '@checkout-saga/dashboard';
import { deadLetters } from './support/broker.ts';
import { getJson, order, placeOrder } from './support/client.ts';
import { invariantViolations, stockLevels, type Stock } from './support/invariants.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * The compensations of an order that was charged and holds stock (cancelled on timeout while
 * its confirmation could not be written) are dead-lettered in payment and inventory, because
 * refunds and releases fail in their databases. That is loud: the order service's dashboard
 * shows the dead-lettered compensations and the dead-letter queues. Once the cause is fixed,
 * `npm run dlq -- replay --all`, run as an operator would, repairs the money (the refund is
 * recorded) and the stock (the reservation is released).
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const execFileAsync = promisify(execFile);

let system: System;
let initialStock: Stock;

beforeAll(async () => {
  system = await startSystem('compensation_dlq', {
    dashboard: true,
    // One retry, then the dead-letter queue.
    payment: { MAX_DELIVERY_ATTEMPTS: '2' },
    inventory: { MAX_DELIVERY_ATTEMPTS: '2' },
    // The test decides when the saga times out (it moves the deadline), and the checker sees it at once.
    order: { SAGA_TIMEOUT_MS: '600000', TIMEOUT_CHECK_INTERVAL_MS: '100' },
  });
  initialStock = await stockLevels(system);
});

afterAll(async () => {
  await system?.stop();
});

/** A trigger that makes every update of `table` matching `when` fail with `errcode` and `message`. */
async function failUpdates(db: Kysely<any>, name: string, table: string, when: string, errcode: string, message: string): Promise<void> {
  await sql
    .raw(
      `create function ${name}() returns trigger language plpgsql as $$ begin raise exception using errcode = '${errcode}', message = '${message}'; end $$;
       create trigger ${name} before update on ${table} for each row when (${when}) execute function ${name}();`,
    )
    .execute(db);
}

async function stopFailing(db: Kysely<any>, name: string, table: string): Promise<void> {
  await sql.raw(`drop trigger ${name} on ${table}; drop function ${name}();`).execute(db);
}

async function counters(service: ServiceCounters['service']): Promise<ServiceCounters> {
  const { body } = await getJson<DashboardState>(`${system.orderUrl}/dashboard/state`);
  return body.reliability.services.find((counters) => counters.service === service)!;
}

const paymentOf = async (orderId: string) => (await system.paymentDb.selectFrom('payments').select(['status', 'refunded_at']).where('order_id', '=', orderId).executeTakeFirst()) ?? null;
const reservationOf = async (orderId: string) => (await system.inventoryDb.selectFrom('reservations').select(['status']).where('order_id', '=', orderId).executeTakeFirst()) ?? null;

describe('a dead-lettered compensation', { timeout: 120_000 }, () => {
  let orderId: string;

  test('of an order that was charged and holds stock is shown on the dashboard; money and stock stay unrepaired meanwhile', async () => {
    // The order service cannot write confirmations (as if its database were starting up: it retries
    // without spending attempts), and payment and inventory cannot write refunds and releases.
    await failUpdates(system.orderDb, 'test_no_confirmation', 'orders', `new.status = 'CONFIRMED'`, '57P03', 'test: the database cannot confirm orders now');
    await failUpdates(system.paymentDb, 'test_no_refund', 'payments', `new.status = 'REFUNDED'`, 'P0001', 'test: the card processor refuses refunds');
    await failUpdates(system.inventoryDb, 'test_no_release', 'reservations', `new.status = 'RELEASED'`, 'P0001', 'test: the stock table refuses releases');

    ({ orderId } = await placeOrder(system, order({ customerEmail: 'compensation@example.com', items: [{ sku: 'KEYBOARD', qty: 2 }] })));
    await waitFor(async () => (await paymentOf(orderId))?.status === 'COMPLETED' && (await reservationOf(orderId))?.status === 'RESERVED', {
      message: 'the charge and the reservation',
    });
    expect((await stockLevels(system)).get('KEYBOARD')).toBe(initialStock.get('KEYBOARD')! - 2);

    // Its saga times out now: OrderCancelled(timeout) asks payment for a refund and inventory for a release.
    await sql`update sagas set timeout_at = now() where order_id = ${orderId}`.execute(system.orderDb);
    const found = await waitFor(
      async () => {
        const letters = (await deadLetters(system)).filter((letter) => letter.type === 'OrderCancelled');
        return letters.length === 2 ? letters : undefined;
      },
      { message: 'OrderCancelled dead-lettered by payment and by inventory' },
    );
    expect(found.map((letter) => letter.service).sort()).toEqual(['inventory', 'payment']);

    // Loud: the dashboard says which services hold dead-lettered compensations and how many letters wait.
    for (const service of ['payment', 'inventory'] as const) {
      expect(await counters(service)).toMatchObject({ status: 'ok', compensationsDeadLettered: 1, deadLettered: 1, deadLetterQueue: 1 });
    }
    expect(await counters('order')).toMatchObject({ compensationsDeadLettered: 0, deadLetterQueue: 0 });

    // Nothing repairs itself: the order is cancelled, yet still charged and still holding stock.
    const { body: cancelled } = await getJson<{ status: string; reason: string }>(`${system.orderUrl}/orders/${orderId}`);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', reason: 'timeout' });
    expect(await paymentOf(orderId)).toMatchObject({ status: 'COMPLETED', refunded_at: null });
    expect(await reservationOf(orderId)).toMatchObject({ status: 'RESERVED' });
    expect(await invariantViolations(system, initialStock, [orderId])).toEqual([
      `cancelled order ${orderId} (timeout) was charged and not refunded`,
      `cancelled order ${orderId} (timeout) still holds stock (RESERVED)`,
    ]);
  });

  test('replayed with npm run dlq once the cause is fixed, refunds the charge and releases the stock', async () => {
    await stopFailing(system.paymentDb, 'test_no_refund', 'payments');
    await stopFailing(system.inventoryDb, 'test_no_release', 'reservations');
    await stopFailing(system.orderDb, 'test_no_confirmation', 'orders');

    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/dlq.ts', 'replay', '--all'], {
      cwd: root,
      env: { ...process.env, RABBITMQ_URL: system.amqpUrl, QUEUE_PREFIX: system.queuePrefix, LOG_LEVEL: 'info' },
    });
    expect(stdout).toMatch(/replayed 2 dead letters\n$/);

    await waitFor(async () => (await paymentOf(orderId))?.status === 'REFUNDED' && (await reservationOf(orderId))?.status === 'RELEASED', {
      message: 'the refund and the release',
    });
    expect((await stockLevels(system)).get('KEYBOARD')).toBe(initialStock.get('KEYBOARD'));
    await waitFor(async () => (await invariantViolations(system, initialStock, [orderId])).length === 0, { message: 'every invariant to hold for the order' });
    expect(await deadLetters(system)).toEqual([]);
    for (const service of ['payment', 'inventory'] as const) expect(await counters(service)).toMatchObject({ deadLetterQueue: 0 });
  });
});
