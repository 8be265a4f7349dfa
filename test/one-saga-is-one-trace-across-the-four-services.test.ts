import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sql } from 'kysely';
import { traceIdOf } from '@checkout-saga/shared/internal';
import { startOtlpReceiver, startSmtpSink, waitFor, type OtlpReceiver, type ReceivedSpan, type SmtpSink } from '@checkout-saga/shared/testing';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * The four services export their spans over OTLP/HTTP (JSON) to a receiver in this test; each saga
 * must come back as one trace: spans from every service, no span whose parent is missing, and each
 * relay publish linked to the span that wrote its outbox row.
 */

let receiver: OtlpReceiver;
let smtp: SmtpSink;
const systems: System[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  smtp = await startSmtpSink();
});

afterAll(async () => {
  await Promise.allSettled(systems.map((system) => system.stop()));
  await smtp?.close();
  await receiver?.close();
});

async function tracedSystem(label: string, settings: { order?: Record<string, string>; payment?: Record<string, string> } = {}): Promise<System> {
  const system = await startSystem(label, {
    common: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    notification: { SMTP_URL: smtp.url },
    ...settings,
  });
  systems.push(system);
  return system;
}

/** The trace id the saga's OrderCreated row stores. */
async function traceOfOrder(system: System, orderId: string): Promise<string> {
  const { rows } = await sql<{ traceparent: string }>`
    select headers->>'traceparent' as traceparent from outbox where envelope->>'orderId' = ${orderId} and envelope->>'type' = 'OrderCreated'`.execute(system.orderDb);
  const traceId = traceIdOf(rows[0]?.traceparent);
  if (!traceId) throw new Error(`no traceparent stored with the OrderCreated row of order ${orderId}`);
  return traceId;
}

const missingParents = (spans: readonly ReceivedSpan[]) => {
  const ids = new Set(spans.map((span) => span.spanId));
  return spans.filter((span) => span.parentSpanId !== undefined && !ids.has(span.parentSpanId));
};

/** Waits until the trace holds every span named in `expected` (service and span name) and none lacks its parent. */
async function collectedTrace(system: System, traceId: string, expected: readonly [service: string, name: string][]): Promise<ReceivedSpan[]> {
  return waitFor(
    async () => {
      await Promise.all(system.services.map((service) => service.tracing?.flush()));
      const spans = receiver.spans.filter((span) => span.traceId === traceId);
      const complete = expected.every(([service, name]) => spans.some((span) => span.service === service && span.name === name));
      return complete && missingParents(spans).length === 0 ? spans : undefined;
    },
    { timeoutMs: 20_000, message: `trace ${traceId} to hold ${expected.map((pair) => pair.join(' ')).join(', ')} with every parent` },
  );
}

function expectOneConnectedTrace(spans: readonly ReceivedSpan[]): void {
  expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['order', 'payment', 'inventory', 'notification']));
  expect(missingParents(spans)).toEqual([]);
  expect(spans.filter((span) => span.parentSpanId === undefined).map((span) => span.name)).toEqual(['POST /orders']);
  // Every publish is linked to the span that wrote its row, in the same service, for the same event.
  const publishes = spans.filter((span) => span.name.startsWith('publish '));
  expect(publishes.length).toBeGreaterThanOrEqual(4);
  for (const publish of publishes) {
    const written = publish.links.map((link) => spans.find((span) => span.spanId === link.spanId && span.traceId === link.traceId));
    expect(written.map((span) => span && { service: span.service, name: span.name.split(' ')[0], event: span.attributes['messaging.message.id'] })).toContainEqual({
      service: publish.service,
      name: 'outbox',
      event: publish.attributes['messaging.message.id'],
    });
  }
  // And each consume continues from the publish of its message.
  for (const consume of spans.filter((span) => span.name.startsWith('consume '))) {
    const parent = spans.find((span) => span.spanId === consume.parentSpanId)!;
    expect({ name: parent.name.split(' ')[0], event: parent.attributes['messaging.message.id'] }).toEqual({ name: 'publish', event: consume.attributes['messaging.message.id'] });
  }
}

describe('with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let system: System;
  beforeAll(async () => {
    system = await tracedSystem('traces');
  });

  test('a confirmed saga is one trace across the four services', async () => {
    const { orderId } = await placeOrder(system, order({ customerEmail: 'traced@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CONFIRMED' });
    const spans = await collectedTrace(system, await traceOfOrder(system, orderId), [
      ['order', 'POST /orders'],
      ['payment', 'handle payment.charge'],
      ['inventory', 'handle inventory.reserve'],
      ['order', 'handle order.saga.inventory-reserved'],
      ['inventory', 'handle inventory.commit'],
      ['notification', 'handle notification.confirmed'],
    ]);
    expectOneConnectedTrace(spans);
    expect(spans.filter((span) => span.name === 'db transaction').map((span) => span.service)).toEqual(expect.arrayContaining(['order', 'payment', 'inventory']));
  });

  test('an out-of-stock saga and its refund are one trace across the four services', async () => {
    const { orderId } = await placeOrder(system, order({ items: [{ sku: 'LIMITED-EDITION', qty: 6 }], customerEmail: 'traced-refund@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'inventory_failed' });
    const spans = await collectedTrace(system, await traceOfOrder(system, orderId), [
      ['inventory', 'outbox write InventoryFailed'],
      ['order', 'handle order.saga.inventory-failed'],
      ['payment', 'handle payment.refund-on-request'],
      ['order', 'handle order.saga.payment-refunded'],
      ['notification', 'handle notification.cancelled'],
    ]);
    expectOneConnectedTrace(spans);
  });
});

describe('a saga the timeout checker cancels', () => {
  test("the cancellation is in the saga's trace", async () => {
    const system = await tracedSystem('traces_timeout', { order: { SAGA_TIMEOUT_MS: '300', TIMEOUT_CHECK_INTERVAL_MS: '50' }, payment: { PAYMENT_PROCESSING_MS: '1500' } });
    const { orderId } = await placeOrder(system, order({ customerEmail: 'traced-timeout@example.com' }));
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CANCELLED', reason: 'timeout' });
    const spans = await collectedTrace(system, await traceOfOrder(system, orderId), [
      ['order', 'outbox write OrderCancelled'],
      ['notification', 'handle notification.cancelled'],
    ]);
    expect(missingParents(spans)).toEqual([]);
    // The checker's transaction is a trace of its own (it serves many sagas); the row it wrote links back to it.
    const cancellation = spans.find((span) => span.name === 'outbox write OrderCancelled')!;
    expect(cancellation.links).toHaveLength(1);
    expect(receiver.spans.find((span) => span.spanId === cancellation.links[0]!.spanId)?.name).toBe('db transaction');
  });
});
