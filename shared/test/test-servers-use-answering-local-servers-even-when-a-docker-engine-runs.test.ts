/**
 * A running Docker engine must never break the tests: when the local servers answer,
 * testServers() uses them and never asks the engine for a container (on a machine that cannot
 * reach a registry, testcontainers' pull fails and every suite with it).
 *
 * The engine here is a stand-in HTTP server on DOCKER_HOST that answers testcontainers' runtime
 * checks like a real one and refuses everything else, recording what it was asked. It stands in
 * for Docker only: PostgreSQL and RabbitMQ are the real local servers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';

const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

const asked: string[] = [];
const engine = http.createServer((request, response) => {
  asked.push(`${request.method} ${request.url}`);
  const path = (request.url ?? '').replace(/^\/v[\d.]+/, '').split('?')[0];
  response.setHeader('content-type', 'application/json');
  if (request.method === 'GET' && path === '/_ping') return void response.end('OK');
  if (request.method === 'GET' && path === '/info') {
    return void response.end(JSON.stringify({ ServerVersion: '28.0.0', OperatingSystem: 'Debian GNU/Linux 12', OSType: 'linux', Architecture: 'x86_64', NCPU: 2, MemTotal: 1 }));
  }
  if (request.method === 'GET' && path === '/version') return void response.end(JSON.stringify({ Version: '28.0.0', ApiVersion: '1.50' }));
  response.statusCode = 500;
  response.end(JSON.stringify({ message: 'registry unreachable (stand-in engine)' }));
});

let localServersAnswer = false;

beforeAll(async () => {
  await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve));
  process.env.DOCKER_HOST = `tcp://127.0.0.1:${(engine.address() as AddressInfo).port}`;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  delete process.env.TEST_DATABASE_URL;
  delete process.env.TEST_AMQP_URL;
  const client = new pg.Client({ connectionString: LOCAL_DATABASE_URL, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  localServersAnswer = await client.connect().then(
    () => true,
    () => false,
  );
  await client.end().catch(() => {});
});

afterAll(async () => {
  await new Promise((resolve) => engine.close(resolve));
});

test('the local servers are used while a Docker engine that cannot pull answers, and no container is asked for', async (context) => {
  if (!localServersAnswer) context.skip(`no PostgreSQL at ${LOCAL_DATABASE_URL}: this test needs the machine's own servers`);
  // Imported here, after DOCKER_HOST points at the stand-in engine.
  const { testServers } = await import('../src/testing/servers.ts');
  await expect(testServers()).resolves.toEqual({ databaseUrl: LOCAL_DATABASE_URL, amqpUrl: LOCAL_AMQP_URL });
  expect(asked.filter((request) => /\/(images|containers)\//.test(request)), 'no image pulled, no container created').toEqual([]);
});
