/**
 * Contract: a database from createDatabase sends Kysely's parameterised statements as named
 * prepared statements, so PostgreSQL parses and plans each text once per connection. Every
 * execution still gets its own parameters' rows; a connection names at most
 * NAMED_STATEMENTS_PER_CONNECTION texts and runs the rest unnamed; texts without parameters
 * (which may hold several statements) and very long ones are never named. Transactions,
 * failing statements and connections lost or made stale by a schema change behave as before.
 */
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test, type OnTestFinishedHandler } from 'vitest';
import { createDatabase, type Database, type MessagingTables } from '../src/internal.ts';
import { MAX_NAMED_TEXT_LENGTH, NAMED_STATEMENTS_PER_CONNECTION } from '../src/db/prepared-statements.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../src/testing/index.ts';
import { Cleanup, testPool } from './support/harness.ts';

interface TestTables extends MessagingTables {
  items: { id: number; name: string };
  widgets: { id: number; label: string; colour?: string | null };
}

const cleanup = new Cleanup();
let database: TestDatabase;
let admin: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('prepared_statements');
  cleanup.defer(() => database.drop());
  admin = testPool(database.url, 1);
  cleanup.defer(() => admin.end());
  await admin.query('create table items (id int primary key, name text not null)');
  await admin.query("insert into items select g, 'item ' || g from generate_series(1, 10) g");
  await admin.query("create table widgets (id int primary key, label text not null); insert into widgets values (1, 'sprocket')");
});

afterAll(() => cleanup.run());

/** One connection, so every statement of a test runs in the same session. */
function singleConnection(onTestFinished: (fn: OnTestFinishedHandler) => void): Database<TestTables> {
  const handle = createDatabase<TestTables>(database.url, 1);
  onTestFinished(() => handle.close());
  return handle;
}

/** Has no parameters, so it is never prepared itself. */
async function preparedStatements(db: Kysely<TestTables>): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db);
  return rows.map((row) => row.statement);
}

async function backendPid(db: Kysely<TestTables>): Promise<number> {
  const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
  return rows[0]!.pid;
}

describe('a database from createDatabase', () => {
  test('prepares a repeated query once per connection and answers each execution with its own parameters', async ({ onTestFinished }) => {
    const { db } = singleConnection(onTestFinished);
    const nameOf = (executor: Kysely<TestTables>, id: number) => executor.selectFrom('items').select('name').where('id', '=', id);

    // More than five executions: from the sixth on PostgreSQL may switch to a generic plan.
    for (const id of [1, 2, 3, 4, 5, 6, 7, 8]) {
      expect(await nameOf(db, id).executeTakeFirst()).toEqual({ name: `item ${id}` });
    }
    const inTransaction = await db.transaction().execute(async (trx) => {
      const names = [];
      for (const id of [9, 10, 1]) names.push((await nameOf(trx, id).executeTakeFirst())?.name);
      return { names, prepared: await preparedStatements(trx) };
    });

    expect(inTransaction.names).toEqual(['item 9', 'item 10', 'item 1']);
    expect(inTransaction.prepared).toEqual([nameOf(db, 1).compile().sql]);
  });

  test(`names at most ${NAMED_STATEMENTS_PER_CONNECTION} texts per connection and runs the others unnamed`, async ({ onTestFinished }) => {
    const { db } = singleConnection(onTestFinished);
    const distinct = NAMED_STATEMENTS_PER_CONNECTION + 20;

    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < distinct; i++) {
        const { rows } = await sql<{ n: number }>`select ${sql.lit(i)}::int + ${round}::int as n`.execute(db);
        expect(rows).toEqual([{ n: i + round }]);
      }
    }

    expect(await preparedStatements(db)).toHaveLength(NAMED_STATEMENTS_PER_CONNECTION);
  });

  test('leaves texts without parameters and very long texts unnamed, so several statements in one text still run', async ({ onTestFinished }) => {
    const { db } = singleConnection(onTestFinished);
    const long = 'x'.repeat(MAX_NAMED_TEXT_LENGTH);

    await sql`create temporary table scratch (n int); insert into scratch values (1), (2)`.execute(db);
    const { rows: counted } = await sql<{ count: number }>`select count(*)::int as count from scratch`.execute(db);
    const { rows: joined } = await sql<{ joined: string }>`select ${sql.lit(long)} || ${'y'}::text as joined`.execute(db);

    expect(counted).toEqual([{ count: 2 }]);
    expect(joined).toEqual([{ joined: `${long}y` }]);
    expect(await preparedStatements(db)).toEqual([]);
  });

  test('commits a transaction, rolls back the one a unique violation failed, and goes on with the same statements on the same connection', async ({ onTestFinished }) => {
    const { db } = singleConnection(onTestFinished);
    const insert = (executor: Kysely<TestTables>, id: number, name: string) => executor.insertInto('items').values({ id, name }).execute();
    const nameOf = async (id: number) => (await db.selectFrom('items').select('name').where('id', '=', id).executeTakeFirst())?.name;
    const pid = await backendPid(db);

    await db.transaction().execute((trx) => insert(trx, 100, 'committed'));
    await expect(
      db.transaction().execute(async (trx) => {
        await insert(trx, 101, 'rolled back');
        await insert(trx, 100, 'duplicate');
      }),
    ).rejects.toMatchObject({ code: '23505' });
    await insert(db, 101, 'after the failure');

    expect(await nameOf(100)).toBe('committed');
    expect(await nameOf(101)).toBe('after the failure');
    expect(await backendPid(db)).toBe(pid);
  });

  test('replaces a connection whose prepared select * a schema change made stale, so the retry succeeds', async ({ onTestFinished }) => {
    const { db } = singleConnection(onTestFinished);
    const widget = () => db.selectFrom('widgets').selectAll().where('id', '=', 1).executeTakeFirst();
    expect(await widget()).toEqual({ id: 1, label: 'sprocket' });
    const pid = await backendPid(db);

    await admin.query('alter table widgets add column colour text');

    await expect(widget()).rejects.toMatchObject({ code: '0A000' });
    expect(await widget()).toEqual({ id: 1, label: 'sprocket', colour: null });
    expect(await backendPid(db)).not.toBe(pid);
  });

  test('prepares its statements afresh on the connection that replaces a killed one', async ({ onTestFinished }) => {
    const { db, pool } = singleConnection(onTestFinished);
    const nameOf = (id: number) => db.selectFrom('items').select('name').where('id', '=', id);
    expect(await nameOf(1).executeTakeFirst()).toEqual({ name: 'item 1' });
    const pid = await backendPid(db);

    await admin.query('select pg_terminate_backend($1)', [pid]);
    await waitFor(() => pool.totalCount === 0, { message: 'the pool dropping its killed connection' });

    expect(await nameOf(2).executeTakeFirst()).toEqual({ name: 'item 2' });
    expect(await backendPid(db)).not.toBe(pid);
    expect(await preparedStatements(db)).toEqual([nameOf(2).compile().sql]);
  });
});
