import { context, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { Transaction } from 'kysely';
import type { BrokerAttachment, ChannelLost } from '../broker/broker.ts';
import { declareTopology, type ServiceTopology } from '../broker/topology.ts';
import { parseEnvelope, type Envelope } from '../contracts/envelope.ts';
import { continueTrace, traceIdOf } from '../contracts/trace.ts';
import type { EventType } from '../contracts/events.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { claimEvents } from '../inbox/inbox.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Outbox, OutboxEntry } from '../outbox/outbox.ts';
import { SerialBatches } from '../runtime/serial-batches.ts';
import { contextFrom, failed, inSpan } from '../tracing/spans.ts';
import type { Tracing } from '../tracing/tracing.ts';
import { reportDeadLetter } from './dead-letter-report.ts';
import { classifyFailure, describeError } from './failure.ts';
import type { EventHandler } from './handler.ts';
import { HeldLogLines } from './held-log-lines.ts';

/** Headers the kit owns on retried and dead-lettered copies. */
export const Headers = {
  attempt: 'x-attempt',
  lastError: 'x-last-error',
  reason: 'x-dead-letter-reason',
  handler: 'x-failed-handler',
  firstFailedAt: 'x-first-failed-at',
  deadLetteredAt: 'x-dead-lettered-at',
  /** Outage failures in a row: each waits the next step of the retry schedule, spending no attempt. */
  outages: 'x-outages',
  routingKey: 'x-original-routing-key',
  exchange: 'x-original-exchange',
  /** Tells this process which of its copies the broker returned as unroutable; rewritten on every copy. */
  copy: 'x-copy-id',
} as const;

export interface ConsumerOptions<DB extends MessagingTables> {
  topology: ServiceTopology;
  handlers: readonly EventHandler<DB, EventType>[];
  /** The service's outbox; absent for a service without a database (its handlers must be non-transactional). */
  outbox?: Outbox<DB>;
  prefetch: number;
  /** Messages applied in one transaction at most; 1 gives every message its own. */
  batchSize: number;
  /**
   * Handlers that run outside batches (`batch: false`, or without a database) at once at most;
   * the rest wait in hand. Default: the prefetch count. See handlerConcurrency for the service's.
   */
  concurrency?: number;
  maxAttempts: number;
  logger: Logger;
  metrics?: Metrics;
  /** When set, each delivery is a consume span (child of the publish span its message names) with a handler span inside. */
  tracing?: Tracing | undefined;
}

type Outcome = 'handled' | 'duplicate';
const CONFLICT_RETRIES = 3;

/** A delivered message, parsed and routed to its handler. */
interface Delivery<DB extends MessagingTables> {
  channel: ConfirmChannel;
  message: ConsumeMessage;
  event: Envelope;
  handler: EventHandler<DB, EventType>;
  attempt: number;
  traceparent: string | undefined;
  log: Logger;
  /** The consume span and the context it is active in, when tracing. */
  span?: Span;
  context?: Context;
}

/**
 * Consumes a service's queue and routes each message to its handler. A message is acked
 * only after the handler's transaction (inbox row + business change + outbox rows) has
 * committed; a failing one is republished to the delay queue for its attempt, or to the
 * dead-letter queue with its reason once attempts are spent, and only then acked, so it
 * is never lost between the two. Invalid or unknown messages go to the dead-letter queue at
 * once. Database outages do not spend attempts: the message waits and comes back.
 *
 * Messages that arrive while a transaction is running are applied together in the next one
 * (up to batchSize): one inbox insert, one outbox insert and one commit for all of them, which
 * is most of what a message costs. Under light load every message still gets a transaction of
 * its own at once. One transaction runs at a time, so two batches of one process never wait on
 * each other's locks. If a batch fails, each of its messages is applied on its own, so only the
 * message at fault is retried or dead-lettered.
 */
export class Consumer<DB extends MessagingTables> implements BrokerAttachment {
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Copies (by their copy id) the broker returned as unroutable; a return always precedes the confirm of the same message. */
  private readonly returnedCopies = new Set<string>();
  private copies = 0;
  /** Handlers running outside batches, and those waiting for a turn. */
  private running = 0;
  private readonly waitingTurn: (() => void)[] = [];
  private readonly closedChannels = new WeakSet<ConfirmChannel>();
  private readonly handlers: Map<string, EventHandler<DB, EventType>>;
  /** Messages for batchable handlers: those that arrive while a transaction runs go together into the next. */
  private readonly batches: SerialBatches<Delivery<DB>>;

  constructor(private readonly options: ConsumerOptions<DB>) {
    // KIT_WITHOUT=consumer-batches acts as CONSUMER_BATCH_SIZE=1 (startService), so these batches are never used then.
    this.batches = new SerialBatches(options.batchSize, (batch) => (batch.length === 1 ? this.deliverAlone(batch[0]!) : this.deliverBatch(batch)));
    this.handlers = new Map();
    for (const handler of options.handlers) {
      // The consumer routes by type, so a second handler for a type would silently never run.
      const first = this.handlers.get(handler.event);
      if (first) throw new Error(`two handlers for ${handler.event}: ${first.name} and ${handler.name}; a service has at most one handler per event type`);
      this.handlers.set(handler.event, handler);
    }
    for (const handler of options.handlers) {
      if (handler.transactional !== false && !options.outbox) throw new Error(`handler ${handler.name} needs a database`);
    }
  }

  get isConsuming(): boolean {
    return this.consumerTag !== undefined;
  }

  async attach(connection: ChannelModel, channelLost?: ChannelLost): Promise<void> {
    if (this.stopping) return;
    const channel = await connection.createConfirmChannel();
    let lastError: Error | undefined;
    channel.on('error', (error: Error) => (lastError = error));
    channel.on('return', (returned: ConsumeMessage) => {
      const id = returned.properties.headers?.[Headers.copy];
      if (typeof id === 'string') this.returnedCopies.add(id);
    });
    channel.on('close', () => {
      this.closedChannels.add(channel);
      // Unacked, they are redelivered on the next channel.
      this.batches.discard((delivery) => delivery.channel === channel);
      if (this.channel === channel) {
        this.channel = undefined;
        this.consumerTag = undefined;
        if (!this.stopping) channelLost?.(lastError);
      }
    });
    await channel.prefetch(this.options.prefetch);
    this.channel = channel;
    await this.subscribe(connection, channel);
  }

  private async subscribe(connection: ChannelModel, channel: ConfirmChannel): Promise<void> {
    const { consumerTag } = await channel.consume(this.options.topology.queue, (message) => {
      if (message) this.receive(channel, message);
      else void this.resubscribe(connection, channel);
    });
    if (this.channel === channel && !this.stopping) this.consumerTag = consumerTag;
  }

  /**
   * The broker cancelled the consumer (its queue was deleted, or a quorum queue's leader went
   * away) while the connection and channel live on, so nothing else will bring it back: until
   * the queue is declared again and consumed, the service is not ready. amqplib's recovery only
   * covers a lost connection, hence this loop.
   */
  private async resubscribe(connection: ChannelModel, channel: ConfirmChannel): Promise<void> {
    if (this.channel !== channel) return;
    this.consumerTag = undefined;
    const { queue } = this.options.topology;
    this.options.logger.error({ queue }, 'consumer cancelled by the broker; declaring the queue and subscribing again');
    for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 5000)) {
      await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      // A closed channel or a stop ends the loop; after a lost connection the broker attaches the consumer anew.
      if (this.stopping || this.channel !== channel) return;
      try {
        await declareTopology(connection, this.options.topology.exchange, this.options.topology);
        await this.subscribe(connection, channel);
        this.options.logger.warn({ queue }, 'consumer subscribed again');
        return;
      } catch (error) {
        this.options.logger.error({ queue, err: describeError(error), retryInMs: Math.min(delayMs * 2, 5000) }, 'could not subscribe again; retrying');
      }
    }
  }

  detach(): void {
    this.channel = undefined;
    this.consumerTag = undefined;
  }

  /** Stops taking messages, lets the ones in hand finish (and be acked), then closes the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    const { channel, consumerTag } = this;
    if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => {});
    this.consumerTag = undefined;
    await this.batches.idle();
    await Promise.allSettled([...this.inFlight]);
    this.channel = undefined;
    await channel?.close().catch(() => {});
  }

  private track(work: Promise<void>): void {
    const tracked = work.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private receive(channel: ConfirmChannel, message: ConsumeMessage): void {
    const attempt = attemptOf(message);
    const parsed = parseEnvelope(message.content);
    if (!parsed.ok) return this.track(this.deadLetter(channel, message, parsed.reason, attempt, 'none'));
    const event = parsed.envelope;
    const handler = this.handlers.get(event.type);
    if (!handler) return this.track(this.deadLetter(channel, message, `no handler for ${event.type} in queue ${this.options.topology.queue}`, attempt, 'none'));

    const traceparent = message.properties.headers?.traceparent as string | undefined;
    const log = this.options.logger.child({ eventId: event.eventId, sagaId: event.sagaId, orderId: event.orderId, type: event.type, traceId: traceIdOf(traceparent) });
    const delivery: Delivery<DB> = { channel, message, event, handler, attempt, traceparent, log, ...this.consumeSpan(event, message) };
    if (handler.transactional === false || !this.options.outbox) return this.track(this.inTurn(channel, () => this.deliverOutside(delivery)));
    if (handler.batch === false || handler.externalEffects || this.options.batchSize <= 1) return this.track(this.inTurn(channel, () => this.deliverAlone(delivery)));
    this.batches.add(delivery);
  }

  /**
   * The span of one delivery, from its arrival to its ack or its copy to a retry or dead-letter queue.
   * Written by hand: @opentelemetry/instrumentation-amqplib supports amqplib 2 but patches it through a
   * require hook, which must run before amqplib loads (the kit's static ESM imports load it first) and
   * reports every service of a process to one global provider (the tests host four services in one).
   */
  private consumeSpan(event: Envelope, message: ConsumeMessage): Pick<Delivery<DB>, 'span' | 'context'> {
    const { tracing, topology } = this.options;
    if (!tracing) return {};
    const parent = contextFrom(message.properties.headers);
    const span = tracing.tracer.startSpan(
      `consume ${event.type}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': topology.queue,
          'messaging.rabbitmq.destination.routing_key': message.fields.routingKey,
          'messaging.message.id': event.eventId,
          'saga.id': event.sagaId,
          'order.id': event.orderId,
        },
      },
      parent,
    );
    return { span, context: trace.setSpan(parent, span) };
  }

  /** Runs `work` with the delivery's consume span active (as it is when tracing is off: directly). */
  private within<T>(delivery: Delivery<DB>, work: () => Promise<T>): Promise<T> {
    return delivery.context ? context.with(delivery.context, work) : work();
  }

  /**
   * Runs a delivery once fewer than `concurrency` run, in arrival order. A delivery whose turn
   * comes after its channel closed, or after stop() began, is skipped: unacked, it goes back to
   * the queue with its channel (so a shutdown does not wait for a whole prefetch window of slow
   * handlers). Written here rather than with p-limit, which cannot skip queued work: a dozen lines.
   */
  private async inTurn(channel: ConfirmChannel, work: () => Promise<void>): Promise<void> {
    const limit = Math.max(1, this.options.concurrency ?? this.options.prefetch);
    if (this.running >= limit) await new Promise<void>((resolve) => this.waitingTurn.push(resolve));
    else this.running++;
    try {
      if (!this.stopping && !this.closedChannels.has(channel)) await work();
    } finally {
      // The turn passes straight to the next in line, or is given back.
      const next = this.waitingTurn.shift();
      if (next) next();
      else this.running--;
    }
  }

  private async deliverBatch(batch: Delivery<DB>[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      // The batch's transaction is in the first message's trace; the others' handler spans link to it.
      outcomes = await this.within(batch[0]!, () => this.apply(batch));
    } catch {
      // Someone in the batch failed (or the database did): apply each on its own, so only the message at fault pays.
      for (const delivery of batch) await this.deliverAlone(delivery);
      return;
    }
    batch.forEach((delivery, index) => this.settled(delivery, outcomes[index]!));
  }

  private async deliverAlone(delivery: Delivery<DB>): Promise<void> {
    try {
      const [outcome] = await this.within(delivery, () => this.withConflictRetries(() => this.apply([delivery])));
      this.settled(delivery, outcome!);
    } catch (error) {
      await this.fail(delivery, error);
    }
  }

  /** A handler without a database: no transaction, no inbox. */
  private async deliverOutside(delivery: Delivery<DB>): Promise<void> {
    const { event, handler, log } = delivery;
    const done = new HeldLogLines();
    try {
      await this.timed(handler, () =>
        this.handlerSpan(delivery, delivery.context, () =>
          handler.handle({
            event,
            trx: undefined as never,
            emit: () => Promise.reject(new Error(`${handler.name} has no outbox`)),
            log,
            afterCommit: (work) => done.defer(work),
          }),
        ),
      );
      done.release();
      this.settled(delivery, 'handled');
    } catch (error) {
      await this.fail(delivery, error);
    }
  }

  private settled(delivery: Delivery<DB>, outcome: Outcome): void {
    delivery.span?.setAttribute('messaging.outcome', outcome);
    delivery.span?.end();
    this.options.metrics?.messages.inc({ handler: delivery.handler.name, outcome });
    delivery.log.debug({ handler: delivery.handler.name, outcome }, 'message handled');
    ack(delivery.channel, delivery.message);
  }

  private async withConflictRetries<T>(work: () => Promise<T>): Promise<T> {
    for (let conflicts = 0; ; conflicts++) {
      try {
        return await work();
      } catch (error) {
        // Serialization failures and deadlocks are the database asking us to try again now.
        if (classifyFailure(error) !== 'conflict' || conflicts >= CONFLICT_RETRIES) throw error;
      }
    }
  }

  /**
   * One transaction: the inbox claim, then the handler of each delivery the claim found new (a
   * duplicate is skipped), then every emitted event; the handlers' log lines once it commits.
   */
  private async apply(deliveries: readonly Delivery<DB>[]): Promise<Outcome[]> {
    const outbox = this.options.outbox!;
    this.options.metrics?.transactionMessages.observe(deliveries.length);
    const logLines = new HeldLogLines();
    const outcomes = await outbox.transaction(async (trx): Promise<Outcome[]> => {
      const keys = deliveries.map(({ event, handler }) => ({ eventId: event.eventId, handler: handler.name }));
      const isNew = await claimEvents(trx as unknown as Transaction<MessagingTables>, keys);
      const emitted: OutboxEntry[] = [];
      /** Set once the emitted events are written: an event emitted later would be lost, so emit throws then. */
      let written = false;
      const outcomes: Outcome[] = [];
      const { tracing } = this.options;
      // A transaction of several messages' handlers: each handler span is in its own message's trace, linked to the transaction.
      if (tracing && deliveries.length > 1) {
        const transaction = trace.getActiveSpan();
        transaction?.addLinks(deliveries.slice(1).flatMap(({ span }) => (span ? [{ context: span.spanContext(), attributes: { 'link.reason': 'applied in this transaction' } }] : [])));
      }
      for (const [index, delivery] of deliveries.entries()) {
        const { event, handler, traceparent, log } = delivery;
        if (!isNew(keys[index]!)) {
          outcomes.push('duplicate');
          continue;
        }
        // Events a handler emits continue the trace of the message that caused them (from the handler's span, when tracing).
        const emit = async (events: Envelope | readonly Envelope[]) => {
          if (written) throw new Error(`${handler.name} emitted after its transaction ended: emit inside handle(), and await it`);
          const next = traceparent || tracing ? continueTrace(traceparent) : undefined;
          const headers: Record<string, string> = next ? { traceparent: next } : {};
          for (const emittedEvent of Array.isArray(events) ? events : [events as Envelope]) emitted.push({ event: emittedEvent, headers });
        };
        await this.timed(handler, () =>
          this.handlerSpan(delivery, deliveries.length === 1 ? undefined : delivery.context, () =>
            handler.handle({ event, trx, emit, log: logLines.hold(log), afterCommit: (work) => logLines.defer(work) }),
          ),
        );
        outcomes.push('handled');
      }
      written = true;
      await outbox.enqueueEach(trx, emitted);
      return outcomes;
    });
    logLines.release();
    return outcomes;
  }

  /** Runs a handler in a span of its own under `parent` (else the active span: the transaction's), when tracing. */
  private handlerSpan(delivery: Delivery<DB>, parent: Context | undefined, work: () => Promise<void>): Promise<void> {
    const { tracing } = this.options;
    if (!tracing) return work();
    const { handler, event, attempt } = delivery;
    return inSpan(tracing, `handle ${handler.name}`, { attributes: { 'handler.name': handler.name, 'event.type': event.type, 'messaging.attempt': attempt } }, parent, () => work());
  }

  private async timed(handler: EventHandler<DB, EventType>, work: () => Promise<void>): Promise<void> {
    const timer = this.options.metrics?.handlerDuration.startTimer({ handler: handler.name });
    try {
      await work();
    } finally {
      timer?.();
    }
  }

  private async fail(delivery: Delivery<DB>, error: unknown): Promise<void> {
    if (delivery.span) failed(delivery.span, error);
    try {
      await this.retryOrDeadLetter(delivery, error);
    } finally {
      delivery.span?.end();
    }
  }

  private async retryOrDeadLetter({ channel, message, handler: { name: handler }, attempt, log }: Delivery<DB>, error: unknown): Promise<void> {
    const reason = describeError(error);
    const kind = classifyFailure(error);
    const { retryQueues } = this.options.topology;
    // An outage is nobody's fault in the message: it comes back without spending an attempt. Each outage
    // failure in a row waits the next step of the schedule (up to its longest), so a dependency that is
    // down is not hammered by every waiting message at the first step's pace; a handler failure starts over.
    const outage = kind === 'infrastructure';
    const outages = outage ? outagesOf(message) + 1 : 0;
    const nextAttempt = outage ? attempt : attempt + 1;
    if (kind === 'permanent' || nextAttempt > this.options.maxAttempts || retryQueues.length === 0) {
      return this.deadLetter(channel, message, reason, attempt, handler);
    }
    const step = outage ? Math.max(attempt - 2, 0) + outages - 1 : nextAttempt - 2;
    const retry = retryQueues[Math.min(step, retryQueues.length - 1)]!;
    log.warn({ handler, attempt, delayMs: retry.delayMs, err: reason, kind, ...(outage ? { outages } : {}) }, 'handler failed; retrying later');
    const sent = await this.republish(channel, retry.name, message, {
      [Headers.attempt]: nextAttempt,
      [Headers.lastError]: reason,
      ...(outage ? { [Headers.outages]: outages } : {}),
    });
    if (sent === 'confirmed') {
      this.options.metrics?.messages.inc({ handler, outcome: 'retried' });
      ack(channel, message);
    } else {
      this.requeue(channel, message, handler, `its retry copy to ${retry.name} was ${sent}`);
    }
  }

  private async deadLetter(channel: ConfirmChannel, message: ConsumeMessage, reason: string, attempt: number, handler: string): Promise<void> {
    const sent = await this.republish(channel, this.options.topology.deadLetterQueue, message, {
      [Headers.attempt]: attempt,
      [Headers.reason]: reason,
      [Headers.handler]: handler,
      [Headers.deadLetteredAt]: new Date().toISOString(),
    });
    if (sent === 'confirmed') {
      reportDeadLetter(this.options, message, { reason, attempt, handler });
      ack(channel, message);
    } else {
      this.requeue(channel, message, handler, `its dead-letter copy to ${this.options.topology.deadLetterQueue} was ${sent} (dead-letter reason: ${reason})`);
    }
  }

  /**
   * The copy did not make it, so the original must not be acked, nor left unacked on a channel that
   * lives on (it would wait there until the channel closes): it goes back to its queue now. Each
   * return counts towards the queue's delivery limit, so a copy that can never be routed ends with
   * the broker dead-lettering the original itself, instead of circling for ever.
   */
  private requeue(channel: ConfirmChannel, message: ConsumeMessage, handler: string, why: string): void {
    this.options.logger.error({ messageId: message.properties.messageId, handler, queue: this.options.topology.queue, why }, 'copy not taken by the broker; message returned to its queue');
    this.options.metrics?.messages.inc({ handler, outcome: 'requeued' });
    try {
      channel.nack(message, false, true);
    } catch {
      // The channel closed under us: the broker returns the message by itself.
    }
  }

  /**
   * Sends a copy straight to one of this service's queues and waits for the broker's confirm.
   * The copy is `mandatory`: without it, a copy to a queue that does not exist is confirmed and
   * dropped. Only 'confirmed' lets the caller ack the original.
   */
  private republish(channel: ConfirmChannel, queue: string, message: ConsumeMessage, extra: Record<string, unknown>): Promise<'confirmed' | 'returned as unroutable' | 'refused by the broker' | 'not sent'> {
    // Only headers the kit owns travel on, as strings: whatever a sender put in a header must not stop the copy.
    const previous = message.properties.headers ?? {};
    const text = (value: unknown, fallback: string) => (typeof value === 'string' || typeof value === 'number' ? String(value).slice(0, 1000) : fallback);
    const headers: Record<string, unknown> = {
      ...(typeof previous.traceparent === 'string' ? { traceparent: previous.traceparent.slice(0, 64) } : {}),
      [Headers.routingKey]: text(previous[Headers.routingKey], message.fields.routingKey),
      [Headers.exchange]: text(previous[Headers.exchange], message.fields.exchange),
      [Headers.firstFailedAt]: text(previous[Headers.firstFailedAt], new Date().toISOString()),
      ...extra,
      [Headers.copy]: String(++this.copies),
    };
    const copy = headers[Headers.copy] as string;
    const { messageId, type, correlationId, contentType } = message.properties;
    const options: Options.Publish = { messageId, type, correlationId, contentType, persistent: true, mandatory: true, headers };
    return new Promise((resolve) => {
      try {
        channel.sendToQueue(queue, message.content, options, (error) => {
          const returned = this.returnedCopies.delete(copy);
          resolve(error ? 'refused by the broker' : returned ? 'returned as unroutable' : 'confirmed');
        });
      } catch {
        resolve('not sent');
      }
    });
  }
}

/** Outage failures in a row so far; anything but a whole number from 0 up counts as none. */
function outagesOf(message: ConsumeMessage): number {
  const value = Number(message.properties.headers?.[Headers.outages] ?? 0);
  return Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/** The kit's attempt count; anything but a whole number from 1 up (a foreign or hostile header) counts as the first attempt. */
function attemptOf(message: ConsumeMessage): number {
  const value = Number(message.properties.headers?.[Headers.attempt] ?? 1);
  return Number.isSafeInteger(value) && value >= 1 ? value : 1;
}

function ack(channel: ConfirmChannel, message: ConsumeMessage): void {
  try {
    channel.ack(message);
  } catch {
    // The channel closed under us: the broker will redeliver and the inbox will recognise it.
  }
}
