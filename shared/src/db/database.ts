import { Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import pg from 'pg';
import type { MessagingTables } from './messaging-tables.ts';
import { switchedOff } from '../runtime/mechanisms.ts';
import { PipelinedDriver } from './pipelined-driver.ts';

/** int8 columns (counts, minor units, identities) come back as numbers: every value we store fits in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface Database<T extends MessagingTables> {
  db: Kysely<T>;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function createDatabase<T extends MessagingTables>(url: string, poolSize = 10): Database<T> {
  // Pipeline mode lets a connection write a statement before the answer to the previous one is in (see PipelinedDriver).
  const pipelining = !switchedOff('pipelining');
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types, connectionTimeoutMillis: 5000, pipeline: pipelining });
  // A client losing its connection (database restart, network cut) must not crash the process: an idle
  // one is reported on the pool, which replaces it; a checked-out one on the client itself, and its
  // in-flight query is rejected, which the caller (handler retry, HTTP 500, relay retry) deals with.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<T>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new PipelinedDriver(pool, pipelining),
      createIntrospector: (kysely) => new PostgresIntrospector(kysely),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
  return { db, pool, close: () => db.destroy() };
}
