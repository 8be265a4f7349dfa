/**
 * Contract: OTEL_EXPORTER_OTLP_PROTOCOL picks how spans are sent (http/protobuf by default, or
 * http/json), OTEL_EXPORTER_OTLP_ENDPOINT is a base URL whose /v1/traces receives them, and
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, when set, is used as it is. OTEL_SERVICE_NAME names the
 * service; OTEL_TRACES_SAMPLER=always_off records nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Type } from 'typebox';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { continueTrace, loadConfig, messagingSettings } from '../src/internal.ts';
import { startTracing } from '../src/tracing/tracing.ts';

interface Received {
  path: string | undefined;
  contentType: string | undefined;
  body: Buffer;
}

const received: Received[] = [];
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    received.push({ path: request.url, contentType: request.headers['content-type'], body: Buffer.concat(chunks) });
    response.writeHead(200, { 'content-type': String(request.headers['content-type']) }).end();
  });
});
let base: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const settings = (env: Record<string, string>) => loadConfig(Type.Object(messagingSettings('inventory', 0)), env);

/** Starts tracing with `env`, records one span, shuts down (which exports), and returns what reached the receiver. */
async function exportOneSpan(env: Record<string, string>): Promise<Received[]> {
  const before = received.length;
  const tracing = await startTracing(settings(env));
  expect(tracing).toBeDefined();
  tracing!.tracer.startSpan('one span').end();
  await tracing!.shutdown();
  return received.slice(before);
}

test('http/protobuf by default, to the base URL /v1/traces', async () => {
  const [request, ...more] = await exportOneSpan({ OTEL_EXPORTER_OTLP_ENDPOINT: `${base}/` });
  expect(more).toEqual([]);
  expect(request).toMatchObject({ path: '/v1/traces', contentType: 'application/x-protobuf' });
  expect(request!.body.includes('one span')).toBe(true);
  expect(request!.body.includes('inventory')).toBe(true);
});

test('http/json to the traces endpoint as given, with OTEL_SERVICE_NAME', async () => {
  const [request] = await exportOneSpan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${base}/collector/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'inventory-eu' });
  expect(request).toMatchObject({ path: '/collector/traces', contentType: 'application/json' });
  const body = JSON.parse(request!.body.toString('utf8')) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeSpans: { spans: { name: string }[] }[] }[] };
  expect(body.resourceSpans[0]!.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'inventory-eu' } });
  expect(body.resourceSpans[0]!.scopeSpans[0]!.spans.map((span) => span.name)).toEqual(['one span']);
});

test('OTEL_TRACES_SAMPLER=always_off sends no span; OTEL_SDK_DISABLED=true starts nothing', async () => {
  expect(await exportOneSpan({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_TRACES_SAMPLER: 'always_off' })).toEqual([]);
  expect(await startTracing(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_SDK_DISABLED: 'true' }))).toBeUndefined();
});

test("continueTrace names the recording span when there is one, so what a step writes points at an exported span", async () => {
  const tracing = (await startTracing(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: base })))!;
  const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const span = tracing.tracer.startSpan('step', {}, propagation.extract(ROOT_CONTEXT, { traceparent: caller }));
  const { traceId, spanId } = span.spanContext();
  expect(context.with(trace.setSpan(ROOT_CONTEXT, span), () => continueTrace(caller))).toBe(`00-${traceId}-${spanId}-01`);
  expect(traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  // Outside any span it is what it always was: the caller's trace, a new span id.
  expect(continueTrace(caller)).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/);
  span.end();
  await tracing.shutdown();
});

// Without the bound, shutdown waits out the export (here made as long as it gets) and the test times out.
test('stopping does not wait for a collector that takes the export and never answers', { timeout: 20_000 }, async () => {
  const before = process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
  process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '600000';
  const held: import('node:http').ServerResponse[] = [];
  const silent = createServer((_request, response) => held.push(response));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const tracing = (await startTracing(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` })))!;
    tracing.tracer.startSpan('never acknowledged').end();
    await tracing.shutdown();
    // Shut down while the export is still unanswered.
    expect(held.length).toBe(1);
    expect(held[0]!.headersSent).toBe(false);
  } finally {
    if (before === undefined) delete process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
    else process.env.OTEL_EXPORTER_OTLP_TIMEOUT = before;
    for (const response of held) response.end();
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
