/**
 * Contract: with tracing on, messages of several sagas applied in one transaction each stay in
 * their own trace: consume span (child of the message's traceparent) -> handler span -> outbox
 * row span, whose traceparent the row stores and the relay's publish links to. The transaction
 * is in the first message's trace and links to the others' consume spans.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { newEvent, on, routingKeyOf, traceIdOf, type Envelope } from '../src/internal.ts';
import { deleteTopology, startOtlpReceiver, testNames, testServers, waitFor, type OtlpReceiver, type ReceivedSpan } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated, rawPublisher, startTestService, testPool, type RawPublisher, type TestService } from './support/harness.ts';

const cleanup = new Cleanup();
let receiver: OtlpReceiver;
let running: TestService<never>;
let publisher: RawPublisher;
let exchange: string;
let pool: ReturnType<typeof testPool>;
/** The first message holds its transaction open until released, so the next ones gather behind it into one batch. */
let gate: { eventId: string; entered: boolean; released: Promise<void> } | undefined;

beforeAll(async () => {
  const servers = await testServers();
  receiver = await startOtlpReceiver();
  cleanup.defer(() => receiver.close());
  const database = await createMessagingDatabase('batch_traces');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
  const names = testNames('batch-traces');
  exchange = names.exchange;
  running = await startTestService({
    env: {
      DATABASE_URL: database.url,
      RABBITMQ_URL: servers.amqpUrl,
      ORDER_EXCHANGE: names.exchange,
      QUEUE_PREFIX: names.queuePrefix,
      CONSUMER_BATCH_SIZE: '32',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    },
    handlers: () => [
      on('OrderCreated', 'test.decline', async ({ event, emit }) => {
        await emit(newEvent('PaymentFailed', event, { reason: 'declined', amountMinor: event.payload.amountMinor, currency: event.payload.currency }));
        if (gate?.eventId === event.eventId && !gate.entered) {
          gate.entered = true;
          await gate.released;
        }
      }),
    ],
  });
  cleanup.defer(() => deleteTopology(servers.amqpUrl, running.service.topology!));
  cleanup.defer(() => running.service.stop());
  publisher = await rawPublisher(servers.amqpUrl);
  cleanup.defer(() => publisher.close());
});

afterAll(() => cleanup.run());

const newTraceparent = () => `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
const publishTraced = (event: Envelope, traceparent: string) =>
  publisher.publish(exchange, routingKeyOf(event.type), JSON.stringify(event), { messageId: event.eventId, type: event.type, correlationId: event.sagaId, headers: { traceparent } });

test('messages of several sagas applied in one transaction each stay in their own connected trace', async () => {
  const first = orderCreated();
  const together = Array.from({ length: 5 }, () => orderCreated());
  const parents = new Map([first, ...together].map((event) => [event.eventId, newTraceparent()]));
  let release!: () => void;
  gate = { eventId: first.eventId, entered: false, released: new Promise<void>((resolve) => (release = resolve)) };
  await publishTraced(first, parents.get(first.eventId)!);
  await waitFor(() => gate!.entered, { message: 'the first message inside its transaction' });
  for (const event of together) await publishTraced(event, parents.get(event.eventId)!);
  const queue = running.service.topology!.queue;
  await waitFor(async () => (await publisher.channel.checkQueue(queue)).messageCount === 0, { message: 'every message delivered to the consumer' });
  release();

  const traceOf = (event: Envelope) => traceIdOf(parents.get(event.eventId))!;
  const spansOf = (event: Envelope) => receiver.spans.filter((span) => span.traceId === traceOf(event));
  // Each trace ends with the publish of the PaymentFailed its message caused.
  await waitFor(
    async () => {
      await running.service.tracing!.flush();
      return [first, ...together].every((event) => spansOf(event).some((span) => span.name === 'publish payment.failed'));
    },
    { message: 'every trace down to its publish' },
  );

  // One transaction served the five that arrived together; it links to the consume spans of all but its own trace's.
  const batch = receiver.spans.find((span) => span.name === 'db transaction' && span.links.length === together.length - 1);
  expect(batch, 'a transaction applying the five together').toBeDefined();

  for (const event of [first, ...together]) {
    const spans = spansOf(event);
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const parentOf = (span: ReceivedSpan) => byId.get(span.parentSpanId!);
    const consume = spans.find((span) => span.name === 'consume OrderCreated')!;
    const handle = spans.find((span) => span.name === 'handle test.decline')!;
    const row = spans.find((span) => span.name === 'outbox write PaymentFailed')!;
    const publish = spans.find((span) => span.name === 'publish payment.failed')!;
    // The consume span continues the traceparent the message came with; everything else has its parent in the trace.
    expect(consume.parentSpanId).toBe(parents.get(event.eventId)!.split('-')[2]);
    expect(spans.filter((span) => span !== consume && !parentOf(span))).toEqual([]);
    expect([handle, row, publish].every(Boolean)).toBe(true);
    // handler under its consume (alone: under the transaction, itself under the consume); row under handler or transaction.
    const ancestors = (span: ReceivedSpan): string[] => (parentOf(span) ? [parentOf(span)!.name, ...ancestors(parentOf(span)!)] : []);
    expect(ancestors(handle)).toContain('consume OrderCreated');
    expect(ancestors(row)).toContain('consume OrderCreated');
    expect(publish.parentSpanId).toBe(row.spanId);
    expect(publish.links).toContainEqual({ traceId: row.traceId, spanId: row.spanId });
    // The row stores the traceparent of its span.
    const { rows } = await pool.query<{ traceparent: string }>(`select headers->>'traceparent' as traceparent from outbox where envelope->>'sagaId' = $1`, [event.sagaId]);
    expect(rows.map((stored) => stored.traceparent.split('-')[2])).toEqual([row.spanId]);
  }
});
