/**
 * The DLQ tool (scripts/dlq) on a dead letter the broker made itself, without the kit's
 * headers: a message handed out more often than its queue's delivery limit, moved to the
 * `.dlq` with an `x-death` header. The tool shows the broker's reason and the message's
 * original exchange and routing key, and a replay sends it back to the service's queue
 * carrying that routing key, so a later failure is dead-lettered with the right route.
 */
import amqp from 'amqplib';
import { declareTopology, Headers, retryDelays, serviceTopology, type ServiceTopology } from '@checkout-saga/shared/internal';
import { deleteTopology, testNames, testServers, waitFor, type TestServers } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DeadLetterQueues } from '../scripts/dlq/dead-letters.ts';

let servers: TestServers;
let topology: ServiceTopology;
let connection: amqp.ChannelModel;
let channel: amqp.ConfirmChannel;
let queues: DeadLetterQueues;
let queuePrefix: string;

beforeAll(async () => {
  servers = await testServers();
  const names = testNames('dlq-broker-made');
  queuePrefix = names.queuePrefix;
  topology = serviceTopology({ exchange: names.exchange, queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays({ MAX_DELIVERY_ATTEMPTS: 2, RETRY_BASE_DELAY_MS: 100 }), deliveryLimit: 1 });
  connection = await amqp.connect(servers.amqpUrl);
  await declareTopology(connection, names.exchange, topology);
  channel = await connection.createConfirmChannel();
  queues = await DeadLetterQueues.connect(servers.amqpUrl, queuePrefix);
});

afterAll(async () => {
  await queues?.close();
  await connection?.close().catch(() => {});
  if (topology) await deleteTopology(servers.amqpUrl, topology);
});

test('a message the broker dead-lettered past the delivery limit is listed with the broker reason and its route, and replayed with its routing key', async () => {
  const messageId = v7();
  channel.publish(topology.exchange, 'order.created', Buffer.from('{}'), { messageId, type: 'OrderCreated', persistent: true, contentType: 'application/json' });
  await channel.waitForConfirms();
  // Handed out and returned until past the limit of 1, as a consumer dying with it in hand would.
  for (let delivery = 1; delivery <= 2; delivery++) {
    const message = await waitFor(async () => (await channel.get(topology.queue, { noAck: false })) || undefined, { message: `delivery ${delivery}` });
    channel.nack(message, false, true);
  }

  const [letter] = await waitFor(async () => {
    const letters = await queues.list(['payment']);
    return letters.length > 0 && letters;
  }, { message: 'the broker-made dead letter in the .dlq' });
  expect(letter).toMatchObject({ id: messageId, routingKey: 'order.created', exchange: topology.exchange, handler: null });
  expect(letter!.reason).toMatch(/delivery_limit/);
  expect(letter!.deadLetteredAt).toMatch(/^\d{4}-\d\d-\d\dT/);

  const replayed = await queues.replay(['payment'], () => true, () => {});
  expect(replayed.map((entry) => entry.id)).toEqual([messageId]);
  const copy = await waitFor(async () => (await channel.get(topology.queue, { noAck: true })) || undefined, { message: 'the replayed copy in the service queue' });
  expect(copy.properties.messageId).toBe(messageId);
  expect(copy.properties.headers).toMatchObject({ [Headers.routingKey]: 'order.created', [Headers.exchange]: topology.exchange, [Headers.attempt]: 1 });
  expect(copy.properties.headers?.['x-death']).toBeUndefined();
});
