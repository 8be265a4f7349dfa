import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the kit records, on one registry per service (served at GET /metrics). */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // prom-client samples event-loop delay with a 10 ms timer by default: a hundred wake-ups a
  // second per process, most of an idle service's CPU (four idle services: 30 ms of CPU a
  // second, 9 at 100 ms). Ten samples a second still catch any stall worth seeing.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  let deadLetterQueueDepth: (() => Promise<number | undefined>) | undefined;
  return {
    registry,
    outboxPending: new Gauge({ name: 'outbox_pending_rows', help: 'Outbox rows not yet published', registers }),
    outboxOldestAge: new Gauge({ name: 'outbox_oldest_pending_seconds', help: 'Age of the oldest unpublished outbox row', registers }),
    published: new Counter({ name: 'outbox_published_total', help: 'Outbox rows published and confirmed by the broker', registers }),
    publishFailures: new Counter({ name: 'outbox_publish_failures_total', help: 'Outbox publishes not confirmed (kept for retry)', registers }),
    unroutable: new Counter({
      name: 'outbox_unroutable_total',
      help: 'Outbox publishes the broker returned because no queue is bound to the routing key (the row is kept and retried; also counted in outbox_publish_failures_total)',
      labelNames: ['routing_key'] as const,
      registers,
    }),
    confirmLatency: new Histogram({
      name: 'outbox_confirm_seconds',
      help: 'Time from publish to broker confirm, per batch',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    messages: new Counter({
      name: 'messages_total',
      help: 'Messages consumed, by handler and outcome (handled, duplicate, retried, dead_lettered, requeued)',
      labelNames: ['handler', 'outcome'] as const,
      registers,
    }),
    deadLetters: new Counter({
      name: 'dead_letters_total',
      help: 'Messages sent to the dead-letter queue, by event type ("unknown" for a body that is not an envelope) and handler ("none" when no handler took it)',
      labelNames: ['type', 'handler'] as const,
      registers,
    }),
    compensationsDeadLettered: new Counter({
      name: 'compensations_dead_lettered_total',
      help: 'Dead-lettered messages of compensation handlers (refunds, stock releases): each is a charge kept or stock held until it is replayed',
      labelNames: ['type', 'handler'] as const,
      registers,
    }),
    /**
     * Read from the broker whenever the metrics are, so it is the truth across restarts (the
     * counters start again at 0 with every process): messages waiting in this service's
     * dead-letter queue, whoever put them there (the consumer, or the broker's delivery limit).
     */
    deadLetterQueue: new Gauge({
      name: 'dead_letter_queue_messages',
      help: "Messages waiting in this service's dead-letter queue now (absent while the broker cannot be asked)",
      registers,
      async collect() {
        const depth = await deadLetterQueueDepth?.().catch(() => undefined);
        if (depth === undefined) this.reset();
        else this.set(depth);
      },
    }),
    /** Tells the deadLetterQueue gauge how to read the depth (startService does, for a service that consumes). */
    readDeadLetterQueueWith(read: () => Promise<number | undefined>): void {
      deadLetterQueueDepth = read;
    },
    handlerDuration: new Histogram({
      name: 'handler_duration_seconds',
      help: "Time one message's handler took inside its transaction",
      labelNames: ['handler'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    transactionMessages: new Histogram({
      name: 'consumer_transaction_messages',
      help: 'Messages applied per consumer transaction (those that arrived while the previous one ran)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
