import { randomInt } from 'node:crypto';
import pg from 'pg';
import { connect as amqpConnect } from 'amqplib';
import type { Channel } from 'amqplib';
import type { ServiceTopology } from '../broker/topology.ts';
import { testServers } from './servers';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const PG_MAX_IDENTIFIER = 63;

function randomBase36(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/**
 * Tags everything this process creates, so runs that overlap on one server
 * (parallel workers, two developers, CI retries) never collide, and leftovers
 * of a crashed run can be traced to it.
 */
export const testRunId = `t${randomBase36(8)}`;

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the test server, for one test file or suite. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const { databaseUrl } = await testServers();
  const name = databaseName(label);
  await withAdmin(databaseUrl, (client) => client.query(`create database "${name}"`));
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      withAdmin(databaseUrl, async (client) => {
        // Pools a test forgot to end would otherwise block the drop.
        await client.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
          [name],
        );
        await client.query(`drop database if exists "${name}" with (force)`);
      }),
  };
}

function databaseName(label: string): string {
  const prefix = `cs_${testRunId}_`;
  const suffix = `_${randomBase36(4)}`;
  const room = PG_MAX_IDENTIFIER - prefix.length - suffix.length;
  // Postgres silently truncates longer names, which could make two differently
  // labelled databases collide; cut the label instead, never the unique parts.
  const safe = sanitize(label, /[^a-z0-9_]+/g, '_').slice(0, room);
  return `${prefix}${safe}${suffix}`;
}

function sanitize(label: string, disallowed: RegExp, replacement: string): string {
  const cleaned = label.toLowerCase().replace(disallowed, replacement);
  return cleaned === '' ? 'x' : cleaned;
}

async function withAdmin<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface TestNames {
  exchange: string;
  queuePrefix: string;
}

/** Broker names no other test or run shares; queues are `${queuePrefix}<name>`. */
export function testNames(label = 'test'): TestNames {
  const base = `${testRunId}.${sanitize(label, /[^a-z0-9_-]+/g, '-')}.${randomBase36(4)}`;
  return { exchange: `${base}.order.topic`, queuePrefix: `${base}.` };
}

/** Removes the broker objects a test declared; ones already gone are fine. */
export async function deleteBrokerObjects(
  amqpUrl: string,
  names: { exchanges?: string[]; queues?: string[] },
): Promise<void> {
  const conn = await amqpConnect(amqpUrl);
  conn.on('error', () => {});
  const failures: unknown[] = [];
  try {
    const deletions = [
      ...(names.queues ?? []).map((q) => (ch: Channel) => ch.deleteQueue(q)),
      ...(names.exchanges ?? []).map((x) => (ch: Channel) => ch.deleteExchange(x)),
    ];
    for (const deletion of deletions) {
      // A 404 closes the channel it happened on, so each delete gets its own.
      const channel = await conn.createChannel();
      channel.on('error', () => {});
      try {
        await deletion(channel);
      } catch (error) {
        if (!isNotFound(error)) failures.push(error);
        continue;
      }
      await channel.close().catch(() => {});
    }
  } finally {
    await conn.close().catch(() => {});
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, 'deleting broker objects failed');
}

/**
 * Removes everything `declareTopology` declared for a service: its queue, every retry
 * queue, its dead-letter queue and the exchange. Pass `{ exchange }` alone for a
 * publisher that declared only the exchange.
 */
export async function deleteTopology(amqpUrl: string, topology: ServiceTopology | { exchange: string }): Promise<void> {
  const queues = 'queue' in topology ? [topology.queue, ...topology.retryQueues.map((retry) => retry.name), topology.deadLetterQueue] : [];
  await deleteBrokerObjects(amqpUrl, { exchanges: [topology.exchange], queues });
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 404;
}
