import amqp, { type ConsumeMessage } from 'amqplib';
import type { Envelope } from '@checkout-saga/shared';
import { publishEnvelopes } from '@checkout-saga/shared/testing';
import type { System } from './system.ts';

/** Publishes envelopes straight to the system's exchange, as another service's relay would. */
export async function publishEvents(system: Pick<System, 'amqpUrl' | 'exchange'>, events: readonly Envelope[]): Promise<void> {
  const connection = await amqp.connect(system.amqpUrl);
  try {
    await publishEnvelopes(await connection.createConfirmChannel(), system.exchange, events);
  } finally {
    await connection.close();
  }
}

/** Messages ready or unacked in the named services' queues. */
export async function messageCounts(system: System, services: readonly string[]): Promise<number> {
  const connection = await amqp.connect(system.amqpUrl);
  try {
    let total = 0;
    for (const service of services) {
      const channel = await connection.createChannel();
      const { messageCount } = await channel.checkQueue(`${system.queuePrefix}${service}`);
      total += messageCount;
      await channel.close();
    }
    return total;
  } finally {
    await connection.close();
  }
}

/** Messages in each service's dead-letter queue, with the reason header of each. */
export async function deadLetters(system: System): Promise<{ service: string; reason: string; type: string }[]> {
  const connection = await amqp.connect(system.amqpUrl);
  try {
    const found: { service: string; reason: string; type: string }[] = [];
    const channel = await connection.createChannel();
    for (const service of ['order', 'payment', 'inventory', 'notification']) {
      // Read without consuming for good: everything is nacked back when the channel closes.
      for (;;) {
        const message = await channel.get(`${system.queuePrefix}${service}.dlq`, { noAck: false });
        if (!message) break;
        found.push({ service, reason: String(message.properties.headers?.['x-dead-letter-reason'] ?? ''), type: String(message.properties.type ?? '') });
      }
    }
    await channel.close();
    return found;
  } finally {
    await connection.close();
  }
}

export async function deadLetterCount(system: System): Promise<number> {
  return (await deadLetters(system)).length;
}

/**
 * Makes the broker deliver every saga event twice: a tap queue sees each event and
 * publishes a second copy (same messageId and body) to the exchange.
 */
export async function duplicateEveryEvent(system: Pick<System, 'amqpUrl' | 'exchange' | 'queuePrefix'>): Promise<{ copies(): number; stop(): Promise<void> }> {
  const connection = await amqp.connect(system.amqpUrl);
  const channel = await connection.createConfirmChannel();
  const tap = `${system.queuePrefix}tap`;
  await channel.assertQueue(tap, { durable: false, exclusive: true });
  await channel.bindQueue(tap, system.exchange, '#');
  let copies = 0;
  await channel.consume(tap, (message: ConsumeMessage | null) => {
    if (!message) return;
    if (!message.properties.headers?.['x-test-copy']) {
      channel.publish(system.exchange, message.fields.routingKey, message.content, {
        ...message.properties,
        headers: { ...message.properties.headers, 'x-test-copy': 1 },
      });
      copies++;
    }
    channel.ack(message);
  });
  return {
    copies: () => copies,
    stop: async () => {
      await channel.waitForConfirms().catch(() => {});
      await connection.close();
    },
  };
}
