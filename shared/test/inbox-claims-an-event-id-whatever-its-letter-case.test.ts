/**
 * Contract: the inbox knows an event by its id, not by how the id is spelt. UUIDs are
 * case-insensitive on input (RFC 4122) and PostgreSQL hands them back in lower case, so a key
 * given in capitals is new the first time and a duplicate afterwards, in either spelling;
 * the same id twice in one claim, in two spellings, is new only once.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { claimEvent, claimEvents, createDatabase, type Database, type MessagingTables } from '../src/internal.ts';
import { Cleanup, createMessagingDatabase } from './support/harness.ts';

const cleanup = new Cleanup();
let database: Database<MessagingTables>;

beforeAll(async () => {
  const created = await createMessagingDatabase('inbox_case');
  cleanup.defer(() => created.drop());
  database = createDatabase<MessagingTables>(created.url, 2);
  cleanup.defer(() => database.close());
});
afterAll(() => cleanup.run());

const upper = () => crypto.randomUUID().toUpperCase();
const claimOnce = (eventId: string, handler = 'test.case') => database.db.transaction().execute((trx) => claimEvent(trx, eventId, handler));

test('an event id in capitals is new the first time, and the same id in lower case is then the duplicate', async () => {
  const eventId = upper();
  expect(await claimOnce(eventId)).toBe(true);
  expect(await claimOnce(eventId.toLowerCase())).toBe(false);
  expect(await claimOnce(eventId)).toBe(false);
  const rows = await database.db.selectFrom('processed_events').select('event_id').where('event_id', '=', eventId).execute();
  expect(rows).toHaveLength(1);
});

test('in one claim, an id in capitals among lower-case ones is new, and its second spelling is the duplicate', async () => {
  const first = crypto.randomUUID();
  const shouting = upper();
  const keys = [
    { eventId: first, handler: 'test.case' },
    { eventId: shouting, handler: 'test.case' },
    { eventId: shouting.toLowerCase(), handler: 'test.case' },
    { eventId: shouting, handler: 'test.other-handler' },
  ];
  const isNew = await database.db.transaction().execute((trx) => claimEvents(trx, keys));
  expect(keys.map((key) => isNew(key))).toEqual([true, true, false, true]);
});
