import { createHash } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import { brokerUrls, Headers, type ServiceName } from '@checkout-saga/shared/internal';

export { serviceNames } from './service-names.ts';

/** One message of a service's dead-letter queue, with what the kit's headers say about it. */
export interface DeadLetter {
  /** The AMQP messageId (the event id); else the body's eventId; else `sha256:` and the start of the body's hash. */
  id: string;
  service: ServiceName;
  /** The dead-letter queue it sits in. */
  queue: string;
  type: string | null;
  routingKey: string | null;
  exchange: string | null;
  reason: string;
  handler: string | null;
  attempts: number | null;
  firstFailedAt: string | null;
  deadLetteredAt: string | null;
  properties: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: Buffer;
  /** The body, when it is a JSON object. */
  envelope: Record<string, unknown> | undefined;
}

interface Held {
  message: GetMessage;
  letter: DeadLetter;
}

/** What a command may do with the messages it holds; whatever it does not take goes back to its queue. */
interface Holding {
  held: readonly Held[];
  channel: ConfirmChannel;
  /** Removes a held message from its queue for good. */
  take(entry: Held): void;
}

/**
 * Returns to a queue after which a held message goes back as a fresh copy rather than as
 * itself. RabbitMQ 4 drops a quorum-queue message once it has been returned more often than
 * the queue's delivery limit (20 by default; a dead-letter queue has nowhere to send it on),
 * and which returns count has changed between 4.x releases. A copy starts from zero.
 */
export const REFRESH_AFTER_RETURNS = 10;

/** Broker-maintained counters of how often a quorum-queue message was handed out and returned. */
const RETURN_COUNTERS = ['x-delivery-count', 'x-acquired-count'];

/**
 * Reads, replays and removes the messages of the services' dead-letter queues
 * (`<QUEUE_PREFIX><service>.dlq`). It touches nothing else: it reads only `.dlq` queues and
 * publishes only to a service's own queue, so it can run beside the live services.
 *
 * Reading never takes a message away. Each command takes the messages it looks at with
 * `basic.get` (unacknowledged, so no other run sees them meanwhile), acknowledges only the
 * ones it has replayed (once the broker has confirmed the copy) or purged, and hands every
 * other one back with `basic.nack` and requeue, which RabbitMQ does not count as a failed
 * delivery (`basic.reject` would be). If the process dies first, the broker returns them when
 * the connection drops. A message that has been returned REFRESH_AFTER_RETURNS times is
 * replaced by an identical, confirmed copy, so no number of reads can reach a delivery limit.
 */
export class DeadLetterQueues {
  private constructor(
    private readonly connection: ChannelModel,
    readonly queuePrefix: string,
  ) {}

  /** `rabbitmqUrl` is RABBITMQ_URL as the services read it: one node, or a cluster's nodes separated by commas (the first that answers). */
  static async connect(rabbitmqUrl: string, queuePrefix: string): Promise<DeadLetterQueues> {
    // A one-shot tool needs no recovery: trying each node once is the whole failover it needs.
    let lastError: unknown;
    for (const url of brokerUrls(rabbitmqUrl)) {
      try {
        const connection = await amqp.connect(url);
        connection.on('error', () => {});
        return new DeadLetterQueues(connection, queuePrefix);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  queueOf(service: ServiceName): string {
    return `${this.queuePrefix}${service}`;
  }

  deadLetterQueueOf(service: ServiceName): string {
    return `${this.queueOf(service)}.dlq`;
  }

  /** The dead-letter queues of `services` that exist (a service that never ran under this prefix has none). */
  async existing(services: readonly ServiceName[]): Promise<ServiceName[]> {
    const found: ServiceName[] = [];
    for (const service of services) if (await this.exists(this.deadLetterQueueOf(service))) found.push(service);
    return found;
  }

  /** Every dead letter of `services`, oldest first per queue; all of them stay where they are. */
  list(services: readonly ServiceName[]): Promise<DeadLetter[]> {
    return this.holding(services, async ({ held }) => held.map((entry) => entry.letter));
  }

  /**
   * Sends the dead letters `select` picks back to their service's own queue (default exchange,
   * routing key = the queue name) with the attempt header reset to 1 and the dead-letter
   * headers removed, and takes each out of its dead-letter queue only after the broker has
   * confirmed the copy. Copies of one event in one queue (it was dead-lettered twice) are sent
   * once and all removed. Returns what was replayed.
   */
  replay(services: readonly ServiceName[], select: (letter: DeadLetter) => boolean, replayed: (letter: DeadLetter, target: string) => void): Promise<DeadLetter[]> {
    return this.holding(services, async ({ held, channel, take }) => {
      const done: DeadLetter[] = [];
      for (const copies of groupByServiceAndId(held.filter((entry) => select(entry.letter)))) {
        const first = copies[0]!;
        const target = this.queueOf(first.letter.service);
        if (!(await this.exists(target))) throw new Error(`queue ${target} does not exist, so ${first.letter.id} cannot be replayed; start the ${first.letter.service} service first`);
        await publishConfirmed(channel, target, first.message.content, replayOptions(first.message));
        for (const copy of copies) take(copy);
        done.push(first.letter);
        replayed(first.letter, target);
      }
      return done;
    });
  }

  /** Removes the dead letters `select` picks for good. Returns what was removed. */
  purge(services: readonly ServiceName[], select: (letter: DeadLetter) => boolean, purged: (letter: DeadLetter) => void): Promise<DeadLetter[]> {
    return this.holding(services, async ({ held, take }) => {
      const done: DeadLetter[] = [];
      for (const entry of held.filter((candidate) => select(candidate.letter))) {
        take(entry);
        done.push(entry.letter);
        purged(entry.letter);
      }
      return done;
    });
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }

  /**
   * Takes every message that is ready in the dead-letter queues of `services`, lets `work` take
   * some, then returns the rest. Replays are published only after all are taken, so a replayed
   * message that is dead-lettered again is left for the next run.
   */
  private async holding<T>(services: readonly ServiceName[], work: (holding: Holding) => Promise<T>): Promise<T> {
    const channel = await this.connection.createConfirmChannel();
    let closed = false;
    channel.on('error', () => {});
    channel.on('close', () => {
      closed = true;
    });
    const held: Held[] = [];
    const taken = new Set<Held>();
    try {
      for (const service of services) {
        const queue = this.deadLetterQueueOf(service);
        if (!(await this.exists(queue))) continue;
        // Until the queue has nothing more to hand out: a quorum queue's message count can lag behind
        // messages just returned, so it is no bound. A held message is never handed out twice.
        for (;;) {
          const message = await channel.get(queue, { noAck: false });
          if (!message) break;
          held.push({ message, letter: describe(message, service, queue) });
        }
      }
      return await work({
        held,
        channel,
        take: (entry) => {
          channel.ack(entry.message);
          taken.add(entry);
        },
      });
    } finally {
      if (!closed && held.length > 0) {
        await handBack(channel, held.filter((entry) => !taken.has(entry)));
        // Acks and nacks have no reply; a round trip makes sure the broker has them before the channel closes.
        await channel.checkQueue(held[0]!.letter.queue).catch(() => {});
      }
      await channel.close().catch(() => {});
    }
  }

  /** Whether `queue` exists (checked on a channel of its own, as a 404 closes the channel it happens on). */
  private async exists(queue: string): Promise<boolean> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => {});
    try {
      await channel.checkQueue(queue);
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return false;
      throw error;
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

/**
 * Returns held messages to their queues: each one returned often enough to approach a delivery
 * limit is first replaced by a confirmed copy (and acknowledged), the rest are nacked with
 * requeue. A copy that fails to publish leaves its original to be requeued like the others.
 */
async function handBack(channel: ConfirmChannel, entries: readonly Held[]): Promise<void> {
  try {
    for (const entry of entries) {
      if (returnsOf(entry.message) < REFRESH_AFTER_RETURNS) continue;
      const sent = await publishConfirmed(channel, entry.letter.queue, entry.message.content, refreshOptions(entry.message)).then(
        () => true,
        () => false,
      );
      if (sent) channel.ack(entry.message);
    }
    channel.nackAll(true);
  } catch {
    // The channel is gone: the broker returns whatever it still held.
  }
}

function returnsOf(message: GetMessage): number {
  const headers = message.properties.headers ?? {};
  return Math.max(0, ...RETURN_COUNTERS.map((name) => Number(headers[name])).filter(Number.isFinite));
}

function groupByServiceAndId(held: Held[]): Held[][] {
  const groups = new Map<string, Held[]>();
  for (const entry of held) {
    const key = `${entry.letter.service}\u0000${entry.letter.id}`;
    const group = groups.get(key);
    if (group) group.push(entry);
    else groups.set(key, [entry]);
  }
  return [...groups.values()];
}

/** Publishes to a queue through the default exchange and resolves once the broker has confirmed it; rejects if it was nacked or could not be routed. */
function publishConfirmed(channel: ConfirmChannel, queue: string, content: Buffer, options: Options.Publish): Promise<void> {
  return new Promise((resolve, reject) => {
    let returned = false;
    // A basic.return (no such queue) always arrives before the confirm of the same message.
    const onReturn = () => {
      returned = true;
    };
    channel.once('return', onReturn);
    try {
      channel.sendToQueue(queue, content, { ...options, mandatory: true }, (error) => {
        channel.removeListener('return', onReturn);
        if (error) reject(new Error(`the broker refused the copy for ${queue}`));
        else if (returned) reject(new Error(`no queue ${queue} took the copy`));
        else resolve();
      });
    } catch (error) {
      channel.removeListener('return', onReturn);
      reject(error as Error);
    }
  });
}

/**
 * The properties a replayed copy keeps; of the headers only the trace and the original route
 * (for a dead letter the broker made, the route in its `x-death`), with the attempt count back at 1.
 */
export function replayOptions(message: Pick<GetMessage, 'properties'>): Options.Publish {
  const { messageId, type, correlationId, contentType } = message.properties;
  const previous = message.properties.headers ?? {};
  const headers: Record<string, unknown> = {};
  for (const kept of ['traceparent', Headers.routingKey, Headers.exchange]) {
    if (previous[kept] !== undefined) headers[kept] = previous[kept];
  }
  const death = brokerDeath(previous);
  if (death?.routingKey && headers[Headers.routingKey] === undefined) headers[Headers.routingKey] = death.routingKey;
  if (death?.exchange !== null && death?.exchange !== undefined && headers[Headers.exchange] === undefined) headers[Headers.exchange] = death.exchange;
  headers[Headers.attempt] = 1;
  return { ...defined({ messageId, type, correlationId, contentType }), persistent: true, headers };
}

/** Everything a dead letter carries, but the broker's return counters, for a copy that replaces it in its queue. */
function refreshOptions(message: GetMessage): Options.Publish {
  const { contentType, contentEncoding, correlationId, replyTo, messageId, timestamp, type, appId, priority } = message.properties;
  const headers = Object.fromEntries(Object.entries(message.properties.headers ?? {}).filter(([name]) => !RETURN_COUNTERS.includes(name)));
  return { ...defined({ contentType, contentEncoding, correlationId, replyTo, messageId, timestamp, type, appId, priority }), persistent: true, headers };
}

function defined(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined));
}

/**
 * Where the broker took a message from when it dead-lettered it itself (past the queue's
 * delivery limit, say), from the newest entry of its `x-death` header; undefined for the kit's
 * own dead letters, which have none.
 */
function brokerDeath(headers: Record<string, unknown>): { reason: string; queue: string | null; exchange: string | null; routingKey: string | null; at: string | null } | undefined {
  const deaths = headers['x-death'];
  if (!Array.isArray(deaths) || deaths.length === 0) return undefined;
  const death = deaths[0] as Record<string, unknown>;
  if (typeof death !== 'object' || death === null) return undefined;
  const routingKeys = death['routing-keys'];
  // amqplib decodes an AMQP timestamp (seconds) as { '!': 'timestamp', value }.
  const time = death.time as { value?: unknown } | undefined;
  const seconds = typeof time === 'object' && time !== null ? Number(time.value) : Number.NaN;
  return {
    reason: String(death.reason ?? 'unknown'),
    queue: typeof death.queue === 'string' ? death.queue : null,
    exchange: typeof death.exchange === 'string' ? death.exchange : null,
    routingKey: Array.isArray(routingKeys) && typeof routingKeys[0] === 'string' ? routingKeys[0] : null,
    at: Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : null,
  };
}

function describe(message: GetMessage, service: ServiceName, queue: string): DeadLetter {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const envelope = parseObject(message.content);
  const text = (value: unknown) => (value === undefined || value === null || value === '' ? null : String(value));
  const death = text(headers[Headers.reason]) === null ? brokerDeath(headers) : undefined;
  const attempts = Number(headers[Headers.attempt]);
  const properties = Object.fromEntries(Object.entries(message.properties).filter(([key, value]) => key !== 'headers' && value !== undefined));
  return {
    id: text(message.properties.messageId) ?? (typeof envelope?.eventId === 'string' && envelope.eventId ? envelope.eventId : `sha256:${createHash('sha256').update(message.content).digest('hex').slice(0, 16)}`),
    service,
    queue,
    type: text(message.properties.type) ?? (typeof envelope?.type === 'string' ? text(envelope.type) : null),
    routingKey: text(headers[Headers.routingKey]) ?? death?.routingKey ?? null,
    exchange: headers[Headers.exchange] === undefined ? (death?.exchange ?? null) : String(headers[Headers.exchange]),
    reason: text(headers[Headers.reason]) ?? (death ? `broker: ${death.reason}${death.queue ? ` in ${death.queue}` : ''}` : ''),
    handler: text(headers[Headers.handler]),
    attempts: headers[Headers.attempt] !== undefined && Number.isFinite(attempts) ? attempts : null,
    firstFailedAt: text(headers[Headers.firstFailedAt]),
    deadLetteredAt: text(headers[Headers.deadLetteredAt]) ?? death?.at ?? null,
    properties,
    headers,
    body: message.content,
    envelope,
  };
}

/** The body as a JSON object, or undefined (not JSON, or JSON but not an object). */
function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
