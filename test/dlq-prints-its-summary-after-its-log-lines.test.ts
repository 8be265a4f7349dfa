/**
 * The DLQ tool's output is read by people and by scripts (`| tail -1`): its log lines (one JSON
 * line per dead letter replayed) and its summary go out through one output, in the order they
 * were written, so the summary is always the last line. Logs written by a stream of their own
 * (pino's asynchronous file-descriptor writer) used to land after the summary when the machine
 * was busy.
 */
import amqp from 'amqplib';
import { declareTopology, retryDelays, serviceTopology, type ServiceTopology } from '@checkout-saga/shared/internal';
import { deleteTopology, testNames, testServers, type TestServers } from '@checkout-saga/shared/testing';
import { v7 } from 'uuid';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../scripts/dlq/cli.ts';

let servers: TestServers;
let topology: ServiceTopology;
let connection: amqp.ChannelModel;
let queuePrefix: string;

beforeAll(async () => {
  servers = await testServers();
  const names = testNames('dlq-output-order');
  queuePrefix = names.queuePrefix;
  topology = serviceTopology({ exchange: names.exchange, queuePrefix, service: 'payment', consumes: ['OrderCreated'], retryDelaysMs: retryDelays({ MAX_DELIVERY_ATTEMPTS: 2, RETRY_BASE_DELAY_MS: 100 }), deliveryLimit: 5 });
  connection = await amqp.connect(servers.amqpUrl);
  await declareTopology(connection, names.exchange, topology);
});

afterAll(async () => {
  await connection?.close().catch(() => {});
  if (topology) await deleteTopology(servers.amqpUrl, topology);
});

test('replay --all writes one log line per dead letter through its output, then the summary as the last line', async () => {
  const channel = await connection.createConfirmChannel();
  const ids = Array.from({ length: 25 }, () => v7());
  for (const messageId of ids) {
    channel.sendToQueue(topology.deadLetterQueue, Buffer.from('{}'), { messageId, type: 'OrderCreated', persistent: true, contentType: 'application/json', headers: { 'x-routing-key': 'order.created' } });
  }
  await channel.waitForConfirms();
  await channel.close();

  const written: string[] = [];
  const io = { out: (text: string) => void written.push(text), err: (text: string) => void written.push(`stderr: ${text}`) };
  const code = await main(['replay', '--all', '--service', 'payment'], { RABBITMQ_URL: servers.amqpUrl, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'info' }, io);

  expect(code, written.join('')).toBe(0);
  const lines = written.join('').split('\n').filter((line) => line !== '');
  expect(lines.at(-1)).toBe(`replayed ${ids.length} dead letters`);
  const logged = lines.slice(0, -1).map((line) => JSON.parse(line) as { msg: string; id: string; component: string });
  expect(logged.map((line) => line.id).sort()).toEqual([...ids].sort());
  expect(logged.every((line) => line.msg === 'dead letter replayed' && line.component === 'dlq')).toBe(true);
});
