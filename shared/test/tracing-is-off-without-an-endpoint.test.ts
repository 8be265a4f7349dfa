/**
 * Contract: with no OTLP endpoint set, a service starts no OpenTelemetry SDK: no provider or
 * exporter, the global API stays the no-op it is by default (no context manager, no propagator),
 * and outbox rows keep the headers the caller gave (today's continueTrace path).
 */
import { context, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { continueTrace, traceIdOf } from '../src/internal.ts';
import { testServers, type TestDatabase, type TestServers } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated, publishingService, testPool } from './support/harness.ts';

let servers: TestServers;
let database: TestDatabase;
let pool: pg.Pool;
const cleanup = new Cleanup();

beforeAll(async () => {
  servers = await testServers();
  database = await createMessagingDatabase('tracing_off');
  pool = testPool(database.url);
});

afterAll(async () => {
  await cleanup.run();
  await pool?.end();
  await database?.drop();
});

test('with no OTLP endpoint a service starts no SDK: the API stays a no-op and rows keep the traceparent they were given', async ({ onTestFinished }) => {
  const { service, context: kit } = await publishingService({ servers, database, pool }, { label: 'tracing-off', env: {} }, onTestFinished);
  expect(service.tracing).toBeUndefined();

  // No context manager: a span set into a context is not active inside it. No propagator: nothing is injected.
  const someSpan = trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED });
  expect(context.with(trace.setSpan(ROOT_CONTEXT, someSpan), () => trace.getActiveSpan())).toBeUndefined();
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, someSpan), carrier);
  expect(carrier).toEqual({});
  expect(trace.getTracer('any').startSpan('any').isRecording()).toBe(false);

  const traceparent = continueTrace('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  const event = orderCreated();
  await kit.outbox.transaction((trx) => kit.outbox.enqueue(trx, event, { traceparent }));
  const { rows } = await pool.query<{ headers: Record<string, string> }>('select headers from outbox where event_id = $1', [event.eventId]);
  expect(rows[0]?.headers).toEqual({ traceparent });
  expect(traceIdOf(traceparent)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
});
