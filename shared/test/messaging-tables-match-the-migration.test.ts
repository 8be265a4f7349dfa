/**
 * Contract: the kysely table types the kit compiles against (OutboxTable,
 * ProcessedEventsTable) describe the tables the messaging migration creates. The expected
 * columns below are checked against the types by the compiler (`satisfies`: every key of
 * the type, nothing else, and a column is nullable exactly when its selected type admits
 * null), and against information_schema of a freshly migrated database by the test.
 */
import type { Selectable } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { OutboxTable, ProcessedEventsTable } from '../src/internal.ts';
import { Cleanup, createMessagingDatabase, testPool } from './support/harness.ts';

/** 'YES' when the column's selected type admits null; a JSON document (selected as `unknown`) is never SQL NULL in the kit's tables. */
type Nullability<Table> = {
  [Column in keyof Table]-?: Column extends keyof Selectable<Table>
    ? unknown extends Selectable<Table>[Column]
      ? 'NO'
      : null extends Selectable<Table>[Column]
        ? 'YES'
        : 'NO'
    : never;
};
type ColumnsOf<Table> = { [Column in keyof Table]-?: { type: string; nullable: Nullability<Table>[Column] } };

const outboxColumns = {
  id: { type: 'bigint', nullable: 'NO' },
  event_id: { type: 'uuid', nullable: 'NO' },
  routing_key: { type: 'text', nullable: 'NO' },
  envelope: { type: 'jsonb', nullable: 'NO' },
  headers: { type: 'jsonb', nullable: 'NO' },
  created_at: { type: 'timestamp with time zone', nullable: 'NO' },
  published_at: { type: 'timestamp with time zone', nullable: 'YES' },
  claimed_until: { type: 'timestamp with time zone', nullable: 'YES' },
  attempts: { type: 'integer', nullable: 'NO' },
  last_error: { type: 'text', nullable: 'YES' },
} as const satisfies ColumnsOf<OutboxTable>;

const processedEventsColumns = {
  event_id: { type: 'uuid', nullable: 'NO' },
  handler: { type: 'text', nullable: 'NO' },
  processed_at: { type: 'timestamp with time zone', nullable: 'NO' },
} as const satisfies ColumnsOf<ProcessedEventsTable>;

const cleanup = new Cleanup();
let pool: pg.Pool;

beforeAll(async () => {
  const database = await createMessagingDatabase('messaging_tables');
  cleanup.defer(() => database.drop());
  pool = testPool(database.url);
  cleanup.defer(() => pool.end());
});

afterAll(() => cleanup.run());

async function columnsOf(table: string) {
  const { rows } = await pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
    "select column_name, data_type, is_nullable from information_schema.columns where table_schema = 'public' and table_name = $1",
    [table],
  );
  return Object.fromEntries(rows.map((row) => [row.column_name, { type: row.data_type, nullable: row.is_nullable }]));
}

describe('the kysely types of the kit', () => {
  test('OutboxTable has exactly the columns of the migrated outbox table, with their types and nullability', async () => {
    expect(await columnsOf('outbox')).toEqual(outboxColumns);
  });

  test('ProcessedEventsTable has exactly the columns of the migrated processed_events table, with their types and nullability', async () => {
    expect(await columnsOf('processed_events')).toEqual(processedEventsColumns);
  });

  test('the inbox key is (event_id, handler) and the outbox event id is unique', async () => {
    const { rows } = await pool.query<{ table_name: string; constraint_type: string; columns: string[] }>(`
      select tc.table_name, tc.constraint_type, array_agg(kcu.column_name::text order by kcu.ordinal_position) as columns
      from information_schema.table_constraints tc
      join information_schema.key_column_usage kcu using (constraint_schema, constraint_name, table_name)
      where tc.table_schema = 'public' and tc.table_name in ('outbox', 'processed_events')
      group by tc.table_name, tc.constraint_type, tc.constraint_name
      order by 1, 2, 3`);
    expect(rows).toEqual([
      { table_name: 'outbox', constraint_type: 'PRIMARY KEY', columns: ['id'] },
      { table_name: 'outbox', constraint_type: 'UNIQUE', columns: ['event_id'] },
      { table_name: 'processed_events', constraint_type: 'PRIMARY KEY', columns: ['event_id', 'handler'] },
    ]);
  });
});
