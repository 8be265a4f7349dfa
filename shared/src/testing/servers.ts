import pg from 'pg';
import { connect as amqpConnect } from 'amqplib';

export interface TestServers {
  /** A server URL on an admin database; tests create their own databases from it. */
  databaseUrl: string;
  amqpUrl: string;
}

const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PROBE_TIMEOUT_MS = 2_000;
// Without an engine, detection fails in milliseconds; the cap guards against
// a socket that accepts but never answers (a stale DOCKER_HOST, a dead VM).
const DOCKER_DETECT_TIMEOUT_MS = 3_000;

let memo: Promise<TestServers> | undefined;

/**
 * Finds the PostgreSQL and RabbitMQ servers the tests run against, once per
 * process: env vars first, then the local servers, then containers.
 */
export function testServers(): Promise<TestServers> {
  memo ??= discover().catch((error: unknown) => {
    // Forget a failure so a later call (after the user fixes things) retries.
    memo = undefined;
    throw error;
  });
  return memo;
}

async function discover(): Promise<TestServers> {
  let databaseUrl = nonEmpty(process.env.TEST_DATABASE_URL);
  let amqpUrl = nonEmpty(process.env.TEST_AMQP_URL);
  if (databaseUrl && amqpUrl) return { databaseUrl, amqpUrl };

  // Local servers before Docker: a running engine that cannot pull images (offline, behind a
  // mirror, or one started for `npm run test:docker`) must not fail suites that have servers.
  const [localDb, localAmqp] = await Promise.all([
    databaseUrl ? undefined : probe(() => probePostgres(LOCAL_DATABASE_URL)),
    amqpUrl ? undefined : probe(() => probeAmqp(LOCAL_AMQP_URL)),
  ]);
  if (!databaseUrl && localDb?.ok) databaseUrl = LOCAL_DATABASE_URL;
  if (!amqpUrl && localAmqp?.ok) amqpUrl = LOCAL_AMQP_URL;
  if (databaseUrl && amqpUrl) return { databaseUrl, amqpUrl };

  if (await dockerIsReachable()) {
    // Started side by side: each takes seconds, mostly waiting for readiness.
    const [db, mq] = await Promise.all([databaseUrl ?? startPostgresContainer(), amqpUrl ?? startRabbitContainer()]).catch((error: unknown) => {
      throw new Error(noServersMessage(databaseUrl === undefined, amqpUrl === undefined, localDb, localAmqp, errorText(error)));
    });
    return { databaseUrl: db, amqpUrl: mq };
  }

  throw new Error(noServersMessage(databaseUrl === undefined, amqpUrl === undefined, localDb, localAmqp));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value && value.trim() !== '' ? value.trim() : undefined;
}

type ProbeResult = { ok: true } | { ok: false; error: string };

async function probe(check: () => Promise<void>): Promise<ProbeResult> {
  try {
    await check();
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

async function probePostgres(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  // A dropped connection after connect would otherwise be an unhandled 'error'.
  client.on('error', () => {});
  try {
    await withTimeout(
      (async () => {
        await client.connect();
        await client.query('select 1');
      })(),
      PROBE_TIMEOUT_MS,
      `PostgreSQL at ${redact(url)}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

async function probeAmqp(url: string): Promise<void> {
  const opening = amqpConnect(url, { timeout: PROBE_TIMEOUT_MS });
  let conn;
  try {
    conn = await withTimeout(opening, PROBE_TIMEOUT_MS, `RabbitMQ at ${redact(url)}`);
  } catch (error) {
    // If the deadline won, a late connection must still be closed.
    opening.then((late) => late.close().catch(() => {}), () => {});
    throw error;
  }
  conn.on('error', () => {});
  await conn.close();
}

async function dockerIsReachable(): Promise<boolean> {
  try {
    // Loaded lazily: runs that configure servers through env vars or a local
    // install never pay for importing testcontainers.
    const { getContainerRuntimeClient } = await import('testcontainers');
    await withTimeout(getContainerRuntimeClient(), DOCKER_DETECT_TIMEOUT_MS, 'Docker engine');
    return true;
  } catch {
    return false;
  }
}

type Stoppable = { stop(): Promise<unknown> };
const started: Stoppable[] = [];

function stopAtExit(container: Stoppable): void {
  if (started.length === 0) {
    // 'exit' cannot await, so stop on 'beforeExit'; testcontainers' reaper
    // (Ryuk) removes them anyway if the process is killed first.
    process.once('beforeExit', () => {
      const all = started.splice(0);
      void Promise.allSettled(all.map((c) => c.stop()));
    });
  }
  started.push(container);
}

async function startPostgresContainer(): Promise<string> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:17-alpine').start();
  stopAtExit(container);
  // Hand out the admin database: tests create their own from it.
  const url = new URL(container.getConnectionUri());
  url.pathname = '/postgres';
  return url.toString();
}

async function startRabbitContainer(): Promise<string> {
  const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
  const container = await new RabbitMQContainer('rabbitmq:4-management-alpine').start();
  stopAtExit(container);
  return container.getAmqpUrl();
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
}

function noServersMessage(
  needDb: boolean,
  needAmqp: boolean,
  localDb: ProbeResult | undefined,
  localAmqp: ProbeResult | undefined,
  containerError?: string,
): string {
  const lines = ['No test servers found. The tests need PostgreSQL and RabbitMQ; they looked for:'];
  lines.push('  1. TEST_DATABASE_URL / TEST_AMQP_URL environment variables');
  lines.push('  2. local servers:');
  if (needDb && localDb && !localDb.ok) lines.push(`     - ${LOCAL_DATABASE_URL}: ${localDb.error}`);
  if (needAmqp && localAmqp && !localAmqp.ok) lines.push(`     - ${redact(LOCAL_AMQP_URL)}: ${localAmqp.error}`);
  lines.push(
    containerError === undefined
      ? '  3. a Docker engine for testcontainers (none reachable)'
      : `  3. a Docker engine for testcontainers: it answered, but the containers did not start: ${containerError}`,
  );
  lines.push('Fix it in one of these ways:');
  if (needDb) {
    lines.push('  - set TEST_DATABASE_URL to a PostgreSQL server URL whose user may CREATE DATABASE,');
    lines.push('    e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres');
  }
  if (needAmqp) {
    lines.push('  - set TEST_AMQP_URL to a RabbitMQ URL, e.g. TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672');
  }
  lines.push('  - or start Docker so testcontainers can run postgres:17-alpine and rabbitmq:4-management-alpine');
  return lines.join('\n');
}

/**
 * Bounds a promise by a deadline. Probes against servers that are down can
 * hang on a half-open socket far longer than a test run can afford to wait.
 */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    // A pending deadline must not keep the process alive on its own.
    timer.unref();
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
