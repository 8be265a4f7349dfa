import type { Channel, ChannelModel } from 'amqplib';
import { routingKeyOf, type EventType } from '../contracts/events.ts';

/** The broker objects one service consumes from; names derive from QUEUE_PREFIX so deployments and test runs never collide. */
export interface ServiceTopology {
  exchange: string;
  queue: string;
  deadLetterQueue: string;
  retryQueues: { delayMs: number; name: string }[];
  bindings: string[];
  /** Deliveries of one message from the main queue before the broker dead-letters it (x-delivery-limit). */
  deliveryLimit: number;
  /** Replicas each quorum queue gets when first declared; 0 leaves it to the broker (its `quorum_cluster_size`, 3 by default). */
  quorumInitialGroupSize: number;
}

/** RabbitMQ 4's own default for quorum queues, kept when no limit is given so 3.x and 4.x behave alike. */
export const DEFAULT_DELIVERY_LIMIT = 20;

export function serviceTopology(options: {
  exchange: string;
  queuePrefix: string;
  service: string;
  consumes: readonly EventType[];
  retryDelaysMs: readonly number[];
  deliveryLimit?: number;
  quorumInitialGroupSize?: number;
}): ServiceTopology {
  const queue = `${options.queuePrefix}${options.service}`;
  return {
    exchange: options.exchange,
    queue,
    deadLetterQueue: `${queue}.dlq`,
    // The delay is part of the name: a queue's TTL cannot change once declared, so a new schedule gets new queues.
    retryQueues: [...new Set(options.retryDelaysMs)].map((delayMs) => ({ delayMs, name: `${queue}.retry.${delayMs}ms` })),
    bindings: [...new Set(options.consumes.map(routingKeyOf))],
    deliveryLimit: options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
    quorumInitialGroupSize: options.quorumInitialGroupSize ?? 0,
  };
}

/**
 * A quorum queue's type and, when set, its replica count. Only sent when set: the broker refuses
 * (406) to redeclare an existing queue with a group size it was not created with, so turning
 * it on for a deployment whose queues exist needs new queues (or `rabbitmq-queues grow`).
 */
function quorum(service: ServiceTopology): Record<string, unknown> {
  return { 'x-queue-type': 'quorum', ...(service.quorumInitialGroupSize > 0 ? { 'x-quorum-initial-group-size': service.quorumInitialGroupSize } : {}) };
}

/**
 * Dead-letters straight to `queue` through the default exchange, at least once: the message
 * stays in its queue until `queue` has confirmed it, which RabbitMQ allows only with
 * `reject-publish` overflow (it matters only with a length limit; there is none).
 */
function deadLetterTo(queue: string): Record<string, unknown> {
  return { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
}

/**
 * Declares the exchange and, for a consuming service, its quorum queue with bindings, one
 * delay queue per retry step and the dead-letter queue. A delay queue holds a message for
 * its TTL, then dead-letters it through the default exchange straight back to the service's
 * own queue (not the topic exchange, so other services never see a retry). Idempotent:
 * run on every (re)connect.
 *
 * The main queue has an explicit delivery limit and dead-letters through the default exchange
 * to its `.dlq`: a message handed out more often than the limit without an ack (its consumer
 * died holding it, or it was returned) goes there with `x-death` reason `delivery_limit`.
 * RabbitMQ 4 applies a limit of 20 to every quorum queue and drops such a message when the queue
 * has no dead-letter target; 3.x has no default limit, so it would be redelivered for ever.
 * At-least-once dead-lettering (3.10+) keeps the message in the queue until the `.dlq` has
 * confirmed it; it requires `x-overflow: reject-publish`, which only matters with a length limit
 * (there is none).
 */
export async function declareTopology(connection: ChannelModel, exchange: string, service?: ServiceTopology): Promise<void> {
  const channel = await connection.createChannel();
  // A refused declaration rejects the call below; without a listener the channel's 'error' would crash the process.
  channel.on('error', () => {});
  try {
    await channel.assertExchange(exchange, 'topic', { durable: true });
    if (!service) return;
    // The dead-letter queue first: the main queue's dead letters have somewhere to go from its first message.
    await declareQueue(channel, service.deadLetterQueue, quorum(service));
    await declareQueue(channel, service.queue, {
      ...quorum(service),
      'x-delivery-limit': service.deliveryLimit,
      ...deadLetterTo(service.deadLetterQueue),
    });
    for (const key of service.bindings) await channel.bindQueue(service.queue, service.exchange, key);
    for (const retry of service.retryQueues) {
      await declareQueue(channel, retry.name, {
        ...quorum(service),
        'x-message-ttl': retry.delayMs,
        ...deadLetterTo(service.queue),
      });
    }
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Declares a durable queue. A queue declared before with other arguments (an older version of
 * this topology: the delivery limit and dead-letter target came later) is refused with 406,
 * and only an operator can settle that: the error keeps its code and says what to do.
 */
async function declareQueue(channel: Channel, queue: string, args: Record<string, unknown>): Promise<void> {
  try {
    await channel.assertQueue(queue, { durable: true, arguments: args });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 406) throw error;
    const refused = new Error(
      `queue ${queue} exists with other arguments than ${JSON.stringify(args)} (${(error as Error).message}). ` +
        'Either stop the services, let the queue drain, delete it and start again; or start on a new QUEUE_PREFIX and drain the old queues with the old version',
    );
    throw Object.assign(refused, { code: 406 });
  }
}
