import { createHash } from 'node:crypto';
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type pg from 'pg';

/** pg keeps a connection's prepared statements until it closes; past this many, texts go unnamed. */
export const NAMED_STATEMENTS_PER_CONNECTION = 200;
/** Texts this long are generated (multi-row inserts, long IN lists) and seldom repeat. */
export const MAX_NAMED_TEXT_LENGTH = 4096;

/**
 * The pool as Kysely sees it: every parameterised statement goes out as a named prepared
 * statement, so PostgreSQL parses and plans a text once per connection instead of on every
 * execution. `pool` itself is untouched; its other users keep pg's plain behaviour.
 */
export function preparingPool(pool: pg.Pool): PostgresPool {
  // Kysely keys its connection state on the object `connect` returns, so hand out one per client.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) wrappers.set(client, (wrapper = preparingClient(client)));
      return wrapper;
    },
    end: () => pool.end(),
  };
}

function preparingClient(client: pg.PoolClient): PostgresPoolClient {
  const names = new Map<string, string>();
  let stale: Error | undefined;

  const nameOf = (text: string): string | undefined => {
    const known = names.get(text);
    if (known !== undefined) return known;
    if (names.size >= NAMED_STATEMENTS_PER_CONNECTION || text.length > MAX_NAMED_TEXT_LENGTH) return undefined;
    const name = `k${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    names.set(text, name);
    return name;
  };

  const execute = async (text: string, values: unknown[]) => {
    // Without parameters pg uses the simple protocol, which also runs several statements in
    // one text (migrations, scripts); a prepared statement holds exactly one.
    const name = values.length > 0 ? nameOf(text) : undefined;
    if (!name) return client.query(text, values);
    try {
      return await client.query({ name, text, values });
    } catch (error) {
      // 0A000 here is "cached plan must not change result type": a table changed under a
      // prepared `select *`. The statement would fail on this connection from now on, so
      // the pool replaces the connection and the caller's retry runs on a fresh one.
      if ((error as { code?: unknown }).code === '0A000') stale = error as Error;
      throw error;
    }
  };

  function query<R>(sql: string, parameters: readonly unknown[]): Promise<PostgresQueryResult<R>>;
  function query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  function query(sqlOrCursor: string | PostgresCursor<unknown>, parameters: readonly unknown[] = []): unknown {
    // Kysely hands each call a fresh array. Cursors (streaming) go through as they are.
    return typeof sqlOrCursor === 'string' ? execute(sqlOrCursor, parameters as unknown[]) : client.query(sqlOrCursor as never);
  }

  return {
    query,
    release() {
      client.release(stale);
      stale = undefined;
    },
  };
}
