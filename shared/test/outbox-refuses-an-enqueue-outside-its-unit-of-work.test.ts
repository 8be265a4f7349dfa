/**
 * Contract: `Outbox.enqueue` works only inside the outbox's own unit of work
 * (`outbox.transaction`, or a handler's transaction, which is one). Rows added in any other
 * transaction would be claimed for this process yet never handed to its relay after the
 * commit, so they would wait out the whole claim before any relay published them. Such a call
 * throws instead, and writes nothing; so does an enqueue with a transaction that has ended.
 */
import type { Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDatabase, type Database } from '../src/db/database.ts';
import type { MessagingTables } from '../src/db/messaging-tables.ts';
import { Outbox, type OutboxMessage } from '../src/outbox/outbox.ts';
import type { TestDatabase } from '../src/testing/index.ts';
import { Cleanup, createMessagingDatabase, orderCreated } from './support/harness.ts';

const cleanup = new Cleanup();
let database: TestDatabase;
let handle: Database<MessagingTables>;
let outbox: Outbox<MessagingTables>;
const handedOn: OutboxMessage[] = [];

beforeAll(async () => {
  database = await createMessagingDatabase('outbox_unit_of_work');
  cleanup.defer(() => database.drop());
  handle = createDatabase<MessagingTables>(database.url, 2);
  cleanup.defer(() => handle.close());
  // A claim long enough that a row outside the unit of work would sit unpublished for the whole test.
  outbox = new Outbox(handle.db, { notify: false, claimMs: 600_000, onCommit: (messages) => handedOn.push(...messages) });
});

afterAll(() => cleanup.run());

async function rowsFor(eventId: string): Promise<number> {
  const rows = await handle.db.selectFrom('outbox').select('id').where('event_id', '=', eventId).execute();
  return rows.length;
}

describe('Outbox.enqueue', () => {
  test('in the outbox unit of work, hands the rows on at commit', async () => {
    const event = orderCreated();
    await outbox.transaction((trx) => outbox.enqueue(trx, event));
    expect(handedOn.map((message) => message.eventId)).toContain(event.eventId);
    expect(await rowsFor(event.eventId)).toBe(1);
  });

  test('in a transaction of its own making, throws and writes nothing', async () => {
    const event = orderCreated();
    const attempt = handle.db.transaction().execute((trx) => outbox.enqueue(trx, event));
    await expect(attempt).rejects.toThrow(/outbox\.transaction/);
    expect(await rowsFor(event.eventId)).toBe(0);
    expect(handedOn.map((message) => message.eventId)).not.toContain(event.eventId);
  });

  test('with a transaction that has ended, throws', async () => {
    let ended: Transaction<MessagingTables> | undefined;
    await outbox.transaction(async (trx) => {
      ended = trx;
    });
    await expect(outbox.enqueue(ended!, orderCreated())).rejects.toThrow(/outbox\.transaction/);
  });
});
