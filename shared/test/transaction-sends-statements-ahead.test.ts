/**
 * Contract: in a transaction of a database from createDatabase, a statement given to
 * sendAhead is written without waiting for its answer, and the transaction goes on; its
 * result arrives later, and it commits or rolls back with the transaction. If a statement
 * sent ahead fails, nothing of the transaction is committed: COMMIT fails with that
 * statement's own error, and so does any statement the transaction runs after it (not
 * PostgreSQL's "current transaction is aborted"). BEGIN, held back until the first statement,
 * still covers it. Outside a transaction, sendAhead simply runs the statement.
 */
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createDatabase, sendAhead, type Database, type MessagingTables } from '../src/internal.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.ts';
import { Cleanup, testPool } from './support/harness.ts';

interface TestTables extends MessagingTables {
  notes: { id: number; text: string };
}

const cleanup = new Cleanup();
let database: TestDatabase;
let handle: Database<TestTables>;

beforeAll(async () => {
  database = await createTestDatabase('send_ahead');
  cleanup.defer(() => database.drop());
  const admin = testPool(database.url, 1);
  await admin.query('create table notes (id int primary key, text text not null)');
  await admin.end();
  handle = createDatabase<TestTables>(database.url, 1);
  cleanup.defer(() => handle.close());
});

beforeEach(async () => {
  await handle.db.deleteFrom('notes').execute();
});

afterAll(() => cleanup.run());

const insertNote = (db: Kysely<TestTables>, id: number, text = `note ${id}`) => db.insertInto('notes').values({ id, text }).returning(['id', 'text']).compile();

async function noteIds(): Promise<number[]> {
  const rows = await handle.db.selectFrom('notes').select('id').orderBy('id').execute();
  return rows.map((row) => row.id);
}

describe('a statement sent ahead in a transaction', () => {
  test('lets the transaction go on before its answer is in, answers later, and commits with it', async () => {
    const { slow, note, answeredBeforeBothWritten } = await handle.db.transaction().execute(async (trx) => {
      const slow = await sendAhead(trx, sql<{ slept: string }>`select pg_sleep(${1}::float8)::text as slept`.compile(trx));
      let answered = false;
      void slow.result.then(() => (answered = true));
      const note = await sendAhead(trx, insertNote(trx, 1));
      const answeredBeforeBothWritten = answered;
      return { slow: await slow.result, note: await note.result, answeredBeforeBothWritten };
    });

    // Both were written while the first still slept on the server.
    expect(answeredBeforeBothWritten).toBe(false);
    expect(slow.rows).toEqual([{ slept: '' }]);
    expect(note.rows).toEqual([{ id: 1, text: 'note 1' }]);
    expect(await noteIds()).toEqual([1]);
  });

  test('rolls back with the transaction', async () => {
    await handle.db
      .transaction()
      .execute(async (trx) => {
        await sendAhead(trx, insertNote(trx, 1));
        throw new Error('changed our mind');
      })
      .catch(() => {});
    expect(await noteIds()).toEqual([]);
  });

  test('that fails makes COMMIT fail with its own error, and nothing of the transaction is committed', async () => {
    await handle.db.insertInto('notes').values({ id: 7, text: 'already there' }).execute();

    const outcome = handle.db.transaction().execute(async (trx) => {
      await trx.insertInto('notes').values({ id: 1, text: 'before' }).execute();
      await sendAhead(trx, insertNote(trx, 7)); // duplicate key
      await sendAhead(trx, insertNote(trx, 2));
    });

    await expect(outcome).rejects.toMatchObject({ code: '23505', constraint: 'notes_pkey' });
    expect(await noteIds()).toEqual([7]);
  });

  test('that fails is the error a later statement of the transaction reports', async () => {
    await handle.db.insertInto('notes').values({ id: 7, text: 'already there' }).execute();

    const outcome = handle.db.transaction().execute(async (trx) => {
      const duplicate = await sendAhead(trx, insertNote(trx, 7));
      const later = trx.selectFrom('notes').selectAll().execute();
      await expect(duplicate.result).rejects.toMatchObject({ code: '23505' });
      return later;
    });

    await expect(outcome).rejects.toMatchObject({ code: '23505' });
    expect(await noteIds()).toEqual([7]);
  });
});

describe('a transaction', () => {
  test('covers its first statement, written together with the held-back BEGIN', async () => {
    const inside = await handle.db
      .transaction()
      .execute(async (trx) => {
        const { rows } = await sql<{ open: boolean }>`select now() = statement_timestamp() as open`.execute(trx);
        await trx.insertInto('notes').values({ id: 1, text: 'first' }).execute();
        throw Object.assign(new Error('roll back'), { rows });
      })
      .catch((error: { rows: { open: boolean }[] }) => error.rows);

    // now() is the transaction's start: a statement outside a transaction would be its own start.
    expect(inside).toEqual([{ open: false }]);
    expect(await noteIds()).toEqual([]);
  });

  test('without statements commits, and the connection serves the next one', async () => {
    await handle.db.transaction().execute(async () => {});
    await handle.db.transaction().execute(async (trx) => {
      await trx.insertInto('notes').values({ id: 3, text: 'next' }).execute();
    });
    expect(await noteIds()).toEqual([3]);
  });
});

describe('sendAhead outside a transaction', () => {
  test('runs the statement and answers with its result', async () => {
    const sent = await sendAhead(handle.db, insertNote(handle.db, 5));
    expect((await sent.result).rows).toEqual([{ id: 5, text: 'note 5' }]);
    expect(await noteIds()).toEqual([5]);
  });
});
