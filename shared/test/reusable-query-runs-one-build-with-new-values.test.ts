/**
 * Contract: a reusableQuery is built and compiled once and runs with each call's own values:
 * placeholders take the call's parameters, constants written into the query stay, arrays
 * pass whole, and it works inside a transaction as outside.
 */
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDatabase, reusableQuery, type Database, type MessagingTables } from '../src/internal.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.ts';
import { Cleanup, testPool } from './support/harness.ts';

interface TestTables extends MessagingTables {
  items: { id: number; name: string; kind: string };
}

const cleanup = new Cleanup();
let database: TestDatabase;
let handle: Database<TestTables>;

beforeAll(async () => {
  database = await createTestDatabase('reusable_query');
  cleanup.defer(() => database.drop());
  const admin = testPool(database.url, 1);
  await admin.query('create table items (id int primary key, name text not null, kind text not null)');
  await admin.query("insert into items select g, 'item ' || g, case when g % 2 = 0 then 'even' else 'odd' end from generate_series(1, 10) g");
  await admin.end();
  handle = createDatabase<TestTables>(database.url, 2);
  cleanup.defer(() => handle.close());
});

afterAll(() => cleanup.run());

let builds = 0;
const itemsOfKind = reusableQuery((db: Kysely<TestTables>, params: { ids: number[]; kind: string }) => {
  builds++;
  return db
    .selectFrom('items')
    .select(['id', 'name'])
    .where('id', '=', (eb) => eb.fn.any(eb.val(params.ids)))
    .where('kind', '=', params.kind)
    .where('name', 'like', 'item %') // a constant of the query, kept as it is
    .orderBy('id');
});

const rename = reusableQuery((db: Kysely<TestTables>, params: { id: number; name: string }) =>
  db.updateTable('items').set({ name: sql<string>`${params.name} || '!'` }).where('id', '=', params.id).returning(['id', 'name']),
);

describe('a reusable query', () => {
  test('is built once and returns each call its own rows', async () => {
    const even = await itemsOfKind(handle.db, { ids: [1, 2, 3, 4], kind: 'even' });
    const odd = await itemsOfKind(handle.db, { ids: [5, 6, 7], kind: 'odd' });
    const none = await itemsOfKind(handle.db, { ids: [], kind: 'odd' });

    expect(even.rows).toEqual([{ id: 2, name: 'item 2' }, { id: 4, name: 'item 4' }]);
    expect(odd.rows).toEqual([{ id: 5, name: 'item 5' }, { id: 7, name: 'item 7' }]);
    expect(none.rows).toEqual([]);
    expect(builds).toBe(1);
  });

  test('runs in a transaction, whose rollback undoes it', async () => {
    await handle.db
      .transaction()
      .execute(async (trx) => {
        const { rows } = await rename(trx, { id: 3, name: 'three' });
        expect(rows).toEqual([{ id: 3, name: 'three!' }]);
        throw new Error('roll back');
      })
      .catch(() => {});
    const { rows } = await rename(handle.db, { id: 8, name: 'eight' });
    expect(rows).toEqual([{ id: 8, name: 'eight!' }]);
    const after = await handle.db.selectFrom('items').select(['id', 'name']).where('id', 'in', [3, 8]).orderBy('id').execute();
    expect(after).toEqual([{ id: 3, name: 'item 3' }, { id: 8, name: 'eight!' }]);
  });
});
