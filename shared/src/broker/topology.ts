import type { ChannelModel } from 'amqplib';
import { routingKeyOf, type EventType } from '../contracts/events.ts';

/** The broker objects one service consumes from; names derive from QUEUE_PREFIX so deployments and test runs never collide. */
export interface ServiceTopology {
  exchange: string;
  queue: string;
  deadLetterQueue: string;
  retryQueues: { delayMs: number; name: string }[];
  bindings: string[];
  /** Replicas each quorum queue gets when first declared; 0 leaves it to the broker (its `quorum_cluster_size`, 3 by default). */
  quorumInitialGroupSize: number;
}

export function serviceTopology(options: {
  exchange: string;
  queuePrefix: string;
  service: string;
  consumes: readonly EventType[];
  retryDelaysMs: readonly number[];
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
    quorumInitialGroupSize: options.quorumInitialGroupSize ?? 0,
  };
}

/**
 * Declares the exchange and, for a consuming service, its quorum queue with bindings, one
 * delay queue per retry step and the dead-letter queue. A delay queue holds a message for
 * its TTL, then dead-letters it through the default exchange straight back to the service's
 * own queue (not the topic exchange, so other services never see a retry). Idempotent:
 * run on every (re)connect.
 */
/**
 * A quorum queue's type and, when set, its replica count. Only sent when set: the broker refuses
 * (406) to redeclare an existing queue with a group size it was not created with, so turning
 * it on for a deployment whose queues exist needs new queues (or `rabbitmq-queues grow`).
 */
function quorum(service: ServiceTopology): Record<string, unknown> {
  return { 'x-queue-type': 'quorum', ...(service.quorumInitialGroupSize > 0 ? { 'x-quorum-initial-group-size': service.quorumInitialGroupSize } : {}) };
}

export async function declareTopology(connection: ChannelModel, exchange: string, service?: ServiceTopology): Promise<void> {
  const channel = await connection.createChannel();
  // A refused declaration rejects the call below; without a listener the channel's 'error' would crash the process.
  channel.on('error', () => {});
  try {
    await channel.assertExchange(exchange, 'topic', { durable: true });
    if (!service) return;
    await channel.assertQueue(service.queue, { durable: true, arguments: quorum(service) });
    for (const key of service.bindings) await channel.bindQueue(service.queue, service.exchange, key);
    for (const retry of service.retryQueues) {
      await channel.assertQueue(retry.name, {
        durable: true,
        arguments: {
          ...quorum(service),
          'x-message-ttl': retry.delayMs,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': service.queue,
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
    }
    await channel.assertQueue(service.deadLetterQueue, { durable: true, arguments: quorum(service) });
  } finally {
    await channel.close().catch(() => {});
  }
}
