import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { connect as amqpConnect } from 'amqplib';
import {
  createTestDatabase,
  deleteBrokerObjects,
  startTcpProxy,
  testNames,
  testRunId,
  testServers,
  waitFor,
} from '@checkout-saga/shared/testing';
import type { TcpProxy, TestServers } from '@checkout-saga/shared/testing';

let servers: TestServers;

beforeAll(async () => {
  servers = await testServers();
});

/** One query on a fresh connection that cannot hang the test. */
async function selectOne(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000, query_timeout: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const res = await client.query<{ one: number }>('select 1 as one');
    return res.rows[0]?.one ?? 0;
  } finally {
    await client.end().catch(() => {});
  }
}

function pgTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432) };
}

describe('testServers', () => {
  it('is memoised per process', async () => {
    expect(await testServers()).toBe(servers);
    expect(testRunId).toMatch(/^t[a-z0-9]{8}$/);
  });
});

describe('startTcpProxy', () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await startTcpProxy(pgTarget(servers.databaseUrl));
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('forwards a pg connection', async () => {
    const url = proxy.url(servers.databaseUrl);
    expect(new URL(url).port).toBe(String(proxy.port));
    expect(await selectOne(url)).toBe(1);
  });

  it('cut() breaks open and new connections; restore() lets new ones through', async () => {
    const client = new pg.Client({ connectionString: proxy.url(servers.databaseUrl), query_timeout: 2_000 });
    client.on('error', () => {});
    await client.connect();
    await client.query('select 1');
    expect(proxy.connectionCount()).toBe(1);

    proxy.cut();
    expect(proxy.connectionCount()).toBe(0);
    await expect(client.query('select 1')).rejects.toThrow();
    await client.end().catch(() => {});
    await expect(selectOne(proxy.url(servers.databaseUrl))).rejects.toThrow();

    proxy.restore();
    expect(await selectOne(proxy.url(servers.databaseUrl))).toBe(1);
  });

  it('setLatency(ms) adds at least ms to a round trip', async () => {
    const latency = 150;
    const client = new pg.Client({ connectionString: proxy.url(servers.databaseUrl) });
    client.on('error', () => {});
    await client.connect();
    try {
      proxy.setLatency(latency);
      const started = performance.now();
      await client.query('select 1');
      expect(performance.now() - started).toBeGreaterThanOrEqual(latency);
    } finally {
      proxy.setLatency(0);
      await client.end();
    }
  });

});

describe('startTcpProxy ordering', () => {
  it('keeps chunk order while latency changes mid-stream', async () => {
    const echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const { port } = echo.address() as net.AddressInfo;
    const proxy = await startTcpProxy({ host: '127.0.0.1', port });
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port });
    try {
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      await new Promise<void>((resolve) => socket.once('connect', resolve));

      // Dropping the latency while earlier chunks are still delayed is where
      // per-chunk timers would let later bytes overtake earlier ones.
      const expected: string[] = [];
      for (let i = 0; i < 40; i++) {
        proxy.setLatency(i < 20 ? 30 : 0);
        const piece = `<${i}>`;
        expected.push(piece);
        socket.write(piece);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const all = expected.join('');
      expect(await waitFor(() => received.length >= all.length && received, { timeoutMs: 5_000 })).toBe(all);
    } finally {
      socket.destroy();
      await proxy.close();
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});

describe('testServers discovery', () => {
  it('takes TEST_DATABASE_URL and TEST_AMQP_URL as given, without probing', async () => {
    vi.resetModules();
    vi.stubEnv('TEST_DATABASE_URL', 'postgres://nobody@192.0.2.1:1/postgres');
    vi.stubEnv('TEST_AMQP_URL', 'amqp://nobody@192.0.2.1:1');
    try {
      const fresh = await import('../src/testing/servers');
      expect(await fresh.testServers()).toEqual({
        databaseUrl: 'postgres://nobody@192.0.2.1:1/postgres',
        amqpUrl: 'amqp://nobody@192.0.2.1:1',
      });
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});

describe('createTestDatabase', () => {
  it('creates a database you can use and drop() removes it', async () => {
    const db = await createTestDatabase('Harness-Self Test!');
    expect(db.name).toMatch(new RegExp(`^cs_${testRunId}_harness_self_test__[a-z0-9]{4}$`));
    expect(new URL(db.url).pathname).toBe(`/${db.name}`);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const res = await client.query<{ db: string }>('select current_database() as db');
    expect(res.rows[0]?.db).toBe(db.name);
    // Left open on purpose: drop() must cope with lingering sessions.
    client.on('error', () => {});

    const exists = async () => {
      const admin = new pg.Client({ connectionString: servers.databaseUrl });
      await admin.connect();
      try {
        const r = await admin.query('select 1 from pg_database where datname = $1', [db.name]);
        return r.rowCount === 1;
      } finally {
        await admin.end();
      }
    };
    expect(await exists()).toBe(true);
    await db.drop();
    expect(await exists()).toBe(false);
    await db.drop(); // idempotent
    await client.end().catch(() => {});
  });

  it('keeps names within 63 characters', async () => {
    const db = await createTestDatabase('x'.repeat(200));
    try {
      expect(db.name.length).toBeLessThanOrEqual(63);
      expect(db.name).toMatch(/^[a-z0-9_]+$/);
    } finally {
      await db.drop();
    }
  });
});

describe('testNames and deleteBrokerObjects', () => {
  it('gives unique names and deletes what was declared, ignoring missing ones', async () => {
    const a = testNames('harness');
    const b = testNames('harness');
    expect(a.exchange).not.toBe(b.exchange);
    expect(a.exchange.startsWith(`${testRunId}.harness.`)).toBe(true);
    expect(a.exchange.endsWith('.order.topic')).toBe(true);
    expect(a.queuePrefix.startsWith(`${testRunId}.harness.`)).toBe(true);

    const queue = `${a.queuePrefix}orders`;
    const conn = await amqpConnect(servers.amqpUrl);
    try {
      const ch = await conn.createChannel();
      await ch.assertExchange(a.exchange, 'topic', { durable: false });
      await ch.assertQueue(queue, { durable: false });
      await ch.close();

      await deleteBrokerObjects(servers.amqpUrl, {
        exchanges: [a.exchange, `${b.exchange}.never-declared`],
        queues: [queue, `${b.queuePrefix}never-declared`],
      });

      const gone = async (check: (c: Awaited<ReturnType<typeof conn.createChannel>>) => Promise<unknown>) => {
        const probe = await conn.createChannel();
        probe.on('error', () => {});
        try {
          await check(probe);
          await probe.close();
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      };
      expect(await gone((c) => c.checkExchange(a.exchange))).toBe(true);
      expect(await gone((c) => c.checkQueue(queue))).toBe(true);
    } finally {
      await conn.close();
    }
  });
});

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { intervalMs: 5 });
    expect(value).toEqual({ calls: 3 });
  });

  it('throws on timeout with the message and the last value', async () => {
    await expect(waitFor(() => false, { timeoutMs: 100, intervalMs: 10, message: 'the order to ship' })).rejects.toThrow(
      /the order to ship.*last value: false/,
    );
  });

  it('reports the last probe error', async () => {
    await expect(
      waitFor(
        async () => {
          throw new Error('not yet');
        },
        { timeoutMs: 100, intervalMs: 10, message: 'x' },
      ),
    ).rejects.toThrow(/last error: not yet/);
  });

  it('does not wait past the deadline for a hung probe', async () => {
    const started = Date.now();
    await expect(waitFor(() => new Promise<never>(() => {}), { timeoutMs: 100 })).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
