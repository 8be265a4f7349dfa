/**
 * Contract: frames the broker connection sends in one burst (a batch of publishes, the acks
 * of a batch) reach the socket as one write, not one write each, and every one of them still
 * arrives.
 */
import type { ChannelModel } from 'amqplib';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Broker, declareTopology } from '../src/internal.ts';
import { testNames, testServers, waitFor, type TestServers } from '../src/testing/index.ts';
import { Cleanup, silentLogger } from './support/harness.ts';

const cleanup = new Cleanup();
let servers: TestServers;
let model: ChannelModel;
let exchange: string;

beforeAll(async () => {
  servers = await testServers();
  exchange = testNames('coalesce').exchange;
  const broker = await Broker.connect(servers.amqpUrl, { logger: silentLogger, topology: (connection) => declareTopology(connection, exchange) });
  cleanup.defer(() => broker.close());
  await broker.add({ attach: async (connection) => void (model = connection) });
  cleanup.defer(async () => {
    const channel = await model.createChannel();
    await channel.deleteExchange(exchange);
  });
});

afterAll(() => cleanup.run());

/** Counts the writes the connection's socket makes (one syscall each). */
function countWrites(socket: Socket): { readonly count: number; stop(): void } {
  const counter = { count: 0 };
  const target = socket as unknown as { _write: (...args: unknown[]) => unknown; _writev: (...args: unknown[]) => unknown };
  const { _write, _writev } = target;
  target._write = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return _write.apply(this, args);
  };
  target._writev = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return _writev.apply(this, args);
  };
  return {
    get count() {
      return counter.count;
    },
    stop() {
      target._write = _write;
      target._writev = _writev;
    },
  };
}

describe('a burst of frames', () => {
  test('goes to the socket in a handful of writes, and every message arrives', async () => {
    const channel = await model.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchange, 'burst');
    const socket = (model as unknown as { connection: { stream: Socket } }).connection.stream;
    const writes = countWrites(socket);
    const burst = 200;
    for (let index = 0; index < burst; index++) channel.publish(exchange, 'burst', Buffer.from(String(index)), { persistent: true });
    await channel.waitForConfirms();
    writes.stop();

    expect(writes.count).toBeLessThan(burst / 10);
    await waitFor(async () => (await channel.checkQueue(queue)).messageCount === burst, { message: 'every message of the burst in the queue' });
    await channel.close();
  });
});
