import type { ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { BrokerAttachment } from '../broker/broker.ts';
import type { ServiceTopology } from '../broker/topology.ts';
import { parseEnvelope, type Envelope } from '../contracts/envelope.ts';
import { continueTrace, traceIdOf } from '../contracts/trace.ts';
import type { EventType } from '../contracts/events.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { claimEvent } from '../inbox/inbox.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Outbox } from '../outbox/outbox.ts';
import { classifyFailure, describeError } from './failure.ts';
import type { EventHandler } from './handler.ts';

/** Headers the kit owns on retried and dead-lettered copies. */
export const Headers = {
  attempt: 'x-attempt',
  lastError: 'x-last-error',
  reason: 'x-dead-letter-reason',
  handler: 'x-failed-handler',
  firstFailedAt: 'x-first-failed-at',
  deadLetteredAt: 'x-dead-lettered-at',
  routingKey: 'x-original-routing-key',
  exchange: 'x-original-exchange',
} as const;

export interface ConsumerOptions<DB extends MessagingTables> {
  topology: ServiceTopology;
  handlers: readonly EventHandler<DB, EventType>[];
  /** The service's outbox; absent for a service without a database (its handlers must be non-transactional). */
  outbox?: Outbox<DB>;
  prefetch: number;
  maxAttempts: number;
  logger: Logger;
  metrics?: Metrics;
}

type Outcome = 'handled' | 'duplicate';
const CONFLICT_RETRIES = 3;

/**
 * Consumes a service's queue and routes each message to its handler. A message is acked
 * only after the handler's transaction (inbox row + business change + outbox rows) has
 * committed; a failing one is republished to the delay queue for its attempt, or to the
 * dead-letter queue with its reason once attempts are spent, and only then acked, so it
 * is never lost between the two. Invalid or unknown messages go to the dead-letter queue at
 * once. Database outages do not spend attempts: the message waits and comes back.
 */
export class Consumer<DB extends MessagingTables> implements BrokerAttachment {
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly handlers: Map<string, EventHandler<DB, EventType>>;

  constructor(private readonly options: ConsumerOptions<DB>) {
    this.handlers = new Map(options.handlers.map((handler) => [handler.event, handler]));
    for (const handler of options.handlers) {
      if (handler.transactional !== false && !options.outbox) throw new Error(`handler ${handler.name} needs a database`);
    }
  }

  get isConsuming(): boolean {
    return this.consumerTag !== undefined;
  }

  async attach(connection: ChannelModel): Promise<void> {
    if (this.stopping) return;
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.channel === channel) {
        this.channel = undefined;
        this.consumerTag = undefined;
      }
    });
    await channel.prefetch(this.options.prefetch);
    this.channel = channel;
    const { consumerTag } = await channel.consume(this.options.topology.queue, (message) => {
      if (!message) {
        this.options.logger.error({ queue: this.options.topology.queue }, 'consumer cancelled by the broker (queue deleted?)');
        return;
      }
      const work = this.deliver(channel, message).finally(() => this.inFlight.delete(work));
      this.inFlight.add(work);
    });
    this.consumerTag = consumerTag;
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
    await Promise.allSettled([...this.inFlight]);
    this.channel = undefined;
    await channel?.close().catch(() => {});
  }

  private async deliver(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const attempt = attemptOf(message);
    const parsed = parseEnvelope(message.content);
    if (!parsed.ok) return this.deadLetter(channel, message, parsed.reason, attempt, 'none');
    const event = parsed.envelope;
    const handler = this.handlers.get(event.type);
    if (!handler) return this.deadLetter(channel, message, `no handler for ${event.type} in queue ${this.options.topology.queue}`, attempt, 'none');

    const traceparent = message.properties.headers?.traceparent as string | undefined;
    const log = this.options.logger.child({ eventId: event.eventId, sagaId: event.sagaId, orderId: event.orderId, type: event.type, traceId: traceIdOf(traceparent) });
    const timer = this.options.metrics?.handlerDuration.startTimer({ handler: handler.name });
    try {
      const outcome = await this.apply(handler, event, log, traceparent);
      timer?.();
      this.options.metrics?.messages.inc({ handler: handler.name, outcome });
      log.debug({ handler: handler.name, outcome }, 'message handled');
      ack(channel, message);
    } catch (error) {
      timer?.();
      await this.fail(channel, message, handler.name, attempt, error, log);
    }
  }

  private async apply(handler: EventHandler<DB, EventType>, event: Envelope, log: Logger, traceparent: string | undefined): Promise<Outcome> {
    const { outbox } = this.options;
    // Events a handler emits continue the trace of the message that caused them.
    const headers: Record<string, string> = traceparent ? { traceparent: continueTrace(traceparent) } : {};
    if (handler.transactional === false || !outbox) {
      await handler.handle({ event, trx: undefined as never, emit: () => Promise.reject(new Error(`${handler.name} has no outbox`)), log });
      return 'handled';
    }
    for (let conflicts = 0; ; conflicts++) {
      try {
        return await outbox.transaction(async (trx): Promise<Outcome> => {
          const kitTrx = trx as unknown as Parameters<typeof claimEvent>[0];
          if (!(await claimEvent(kitTrx, event.eventId, handler.name))) return 'duplicate';
          await handler.handle({ event, trx, emit: (events) => outbox.enqueue(trx, events, headers), log });
          return 'handled';
        });
      } catch (error) {
        // Serialization failures and deadlocks are the database asking us to try again now.
        if (classifyFailure(error) !== 'conflict' || conflicts >= CONFLICT_RETRIES) throw error;
      }
    }
  }

  private async fail(channel: ConfirmChannel, message: ConsumeMessage, handler: string, attempt: number, error: unknown, log: Logger): Promise<void> {
    const reason = describeError(error);
    const kind = classifyFailure(error);
    const { retryQueues } = this.options.topology;
    // An outage is nobody's fault in the message: it comes back after the current step's delay without spending an attempt.
    const nextAttempt = kind === 'infrastructure' ? attempt : attempt + 1;
    if (kind === 'permanent' || nextAttempt > this.options.maxAttempts || retryQueues.length === 0) {
      return this.deadLetter(channel, message, reason, attempt, handler);
    }
    const retry = retryQueues[Math.min(nextAttempt - 2, retryQueues.length - 1)] ?? retryQueues[0]!;
    log.warn({ handler, attempt, delayMs: retry.delayMs, err: reason, kind }, 'handler failed; retrying later');
    const sent = await this.republish(channel, retry.name, message, {
      [Headers.attempt]: nextAttempt,
      [Headers.lastError]: reason,
    });
    if (sent) {
      this.options.metrics?.messages.inc({ handler, outcome: 'retried' });
      ack(channel, message);
    }
  }

  private async deadLetter(channel: ConfirmChannel, message: ConsumeMessage, reason: string, attempt: number, handler: string): Promise<void> {
    const sent = await this.republish(channel, this.options.topology.deadLetterQueue, message, {
      [Headers.attempt]: attempt,
      [Headers.reason]: reason,
      [Headers.handler]: handler,
      [Headers.deadLetteredAt]: new Date().toISOString(),
    });
    if (sent) {
      this.options.logger.error({ messageId: message.properties.messageId, reason, attempt, handler }, 'message dead-lettered');
      this.options.metrics?.messages.inc({ handler, outcome: 'dead_lettered' });
      ack(channel, message);
    } else {
      this.options.logger.warn({ messageId: message.properties.messageId, reason }, 'could not dead-letter the message; the broker will redeliver it');
    }
  }

  /**
   * Sends a copy straight to one of this service's queues and waits for the broker's
   * confirm; the original is acked only afterwards. If the channel is gone, the original is
   * left unacked and the broker redelivers it.
   */
  private republish(channel: ConfirmChannel, queue: string, message: ConsumeMessage, extra: Record<string, unknown>): Promise<boolean> {
    // Only headers the kit owns travel on, as strings: whatever a sender put in a header must not stop the copy.
    const previous = message.properties.headers ?? {};
    const text = (value: unknown, fallback: string) => (typeof value === 'string' || typeof value === 'number' ? String(value).slice(0, 1000) : fallback);
    const headers: Record<string, unknown> = {
      ...(typeof previous.traceparent === 'string' ? { traceparent: previous.traceparent.slice(0, 64) } : {}),
      [Headers.routingKey]: text(previous[Headers.routingKey], message.fields.routingKey),
      [Headers.exchange]: text(previous[Headers.exchange], message.fields.exchange),
      [Headers.firstFailedAt]: text(previous[Headers.firstFailedAt], new Date().toISOString()),
      ...extra,
    };
    const { messageId, type, correlationId, contentType } = message.properties;
    const options: Options.Publish = { messageId, type, correlationId, contentType, persistent: true, headers };
    return new Promise((resolve) => {
      try {
        channel.sendToQueue(queue, message.content, options, (error) => resolve(!error));
      } catch {
        resolve(false);
      }
    });
  }
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
