/**
 * Contract: KIT_WITHOUT (bench-only) is a comma list of the kit's performance mechanisms to
 * switch off; each name is accepted, an unknown one stops startup with one line naming
 * KIT_WITHOUT. Switched off, a mechanism gives way to the plain way of doing the same work,
 * with the same results: statements unnamed, a transaction's statements one round trip each
 * (a failing one failing where it is written), hot queries built on every call, and group
 * commit processing each item at once, alone.
 */
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, createDatabase, sendAhead, SerialBatches, type MessagingTables } from '../src/internal.ts';
import { MECHANISMS, mechanismsOff, switchedOff } from '../src/runtime/mechanisms.ts';
import { createTestDatabase, waitFor, type TestDatabase } from '../src/testing/index.ts';
import { Cleanup, testPool } from './support/harness.ts';
import { runFixture } from './support/processes.ts';

interface TestTables extends MessagingTables {
  notes: { id: number; text: string };
}

const cleanup = new Cleanup();
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('kit_without');
  cleanup.defer(() => database.drop());
  const admin = testPool(database.url, 1);
  await admin.query('create table notes (id int primary key, text text not null)');
  await admin.end();
});

afterAll(() => cleanup.run());

/** Sets KIT_WITHOUT for the rest of the test; the mechanisms read it when their objects are made. */
function without(value: string, onTestFinished: (fn: () => void) => void): void {
  const before = process.env.KIT_WITHOUT;
  process.env.KIT_WITHOUT = value;
  onTestFinished(() => {
    if (before === undefined) delete process.env.KIT_WITHOUT;
    else process.env.KIT_WITHOUT = before;
  });
}

function databaseWithout(value: string, onTestFinished: (fn: () => void | Promise<void>) => void) {
  without(value, onTestFinished);
  const handle = createDatabase<TestTables>(database.url, 1);
  onTestFinished(() => handle.close());
  return handle.db;
}

describe('KIT_WITHOUT', () => {
  test.each(MECHANISMS)('accepts %s', (name) => {
    expect(mechanismsOff(name)).toEqual(new Set([name]));
  });

  test('takes every name at once, with spaces, and nothing when unset or empty', () => {
    expect(mechanismsOff(` ${MECHANISMS.join(' , ')} `)).toEqual(new Set(MECHANISMS));
    expect(mechanismsOff(undefined)).toEqual(new Set());
    expect(mechanismsOff('')).toEqual(new Set());
  });

  test('refuses an unknown name with a line naming KIT_WITHOUT and the names it takes', () => {
    expect(() => mechanismsOff('pipelining,batches')).toThrow(ConfigError);
    expect(() => mechanismsOff('pipelining,batches')).toThrow(`KIT_WITHOUT names "batches": expected a comma list of ${MECHANISMS.join(', ')}`);
  });

  test('an unknown name stops a service at its configuration, with one line; every known one passes', async () => {
    const refused = await runFixture('check-config.ts', { KIT_WITHOUT: 'pipelining,no-such-thing' });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toBe('configuration error: KIT_WITHOUT names "no-such-thing": expected a comma list of ' + MECHANISMS.join(', ') + '\n');
    const accepted = await runFixture('check-config.ts', { KIT_WITHOUT: MECHANISMS.join(',') });
    expect(accepted).toMatchObject({ code: 0, stdout: 'configuration ok\n' });
  });

  test('is read again when it changes', ({ onTestFinished }) => {
    expect(switchedOff('pipelining')).toBe(false);
    without('pipelining', onTestFinished);
    expect(switchedOff('pipelining')).toBe(true);
    expect(switchedOff('prepared-statements')).toBe(false);
  });
});

describe('switched off', () => {
  test('prepared-statements: statements run unnamed, with their own results', async ({ onTestFinished }) => {
    const db = databaseWithout('prepared-statements', onTestFinished);
    for (const id of [1, 2, 3]) await db.insertInto('notes').values({ id, text: `note ${id}` }).execute();
    expect(await db.selectFrom('notes').select('text').where('id', '=', 2).executeTakeFirst()).toEqual({ text: 'note 2' });
    const { rows } = await sql<{ name: string }>`select name from pg_prepared_statements`.execute(db);
    expect(rows).toEqual([]);
    await db.deleteFrom('notes').execute();
  });

  test('pipelining: a transaction commits what it sent ahead, and a failing statement fails where it is written', async ({ onTestFinished }) => {
    const db = databaseWithout('pipelining', onTestFinished);
    const insert = (executor: Kysely<TestTables>, id: number) => executor.insertInto('notes').values({ id, text: `note ${id}` }).returning('id').compile();
    const committed = await db.transaction().execute(async (trx) => {
      const first = await sendAhead(trx, insert(trx, 10));
      await sendAhead(trx, insert(trx, 11));
      return (await first.result).rows;
    });
    expect(committed).toEqual([{ id: 10 }]);

    const failing = db.transaction().execute(async (trx) => {
      await sendAhead(trx, insert(trx, 12));
      await sendAhead(trx, insert(trx, 10)); // a duplicate key: throws here, not at COMMIT
      throw new Error('not reached');
    });
    await expect(failing).rejects.toMatchObject({ code: '23505' });
    expect(await db.selectFrom('notes').select('id').orderBy('id').execute()).toEqual([{ id: 10 }, { id: 11 }]);
    await db.deleteFrom('notes').execute();
  });

  test('intake-group-commit: a service’s SerialBatches processes each item at once, alone; the consumer’s still batches', async ({ onTestFinished }) => {
    without('intake-group-commit', onTestFinished);
    const release: (() => void)[] = [];
    const batches: number[][] = [];
    const process = (batch: number[]) => {
      batches.push(batch);
      return new Promise<void>((resolve) => release.push(resolve));
    };
    const intake = new SerialBatches(64, process, 'intake-group-commit');
    for (const item of [1, 2, 3]) intake.add(item);
    expect(batches).toEqual([[1], [2], [3]]); // none waited for the one before
    let idle = false;
    const waited = intake.idle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    for (const done of release.splice(0)) done();
    await waited;

    const consumer = new SerialBatches(64, process);
    for (const item of [4, 5, 6]) consumer.add(item);
    release.shift()!();
    await waitFor(() => batches.length === 5, { message: 'the next consumer batch' });
    release.shift()!();
    await consumer.idle();
    expect(batches.slice(3)).toEqual([[4], [5, 6]]);
  });
});
