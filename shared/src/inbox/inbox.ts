import { sql, type Transaction } from 'kysely';
import { canonicalUuid } from '../contracts/envelope.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';

/** An (event, handler) pair: the inbox records each one applied. */
export interface InboxKey {
  eventId: string;
  handler: string;
}

/**
 * A key as PostgreSQL spells it: the claim matches the rows it returns (event ids in lower
 * case) against the keys it was given, so both sides must be written the same way, or an id
 * given in capitals would look already applied.
 */
const keyOf = (key: InboxKey) => `${canonicalUuid(key.eventId)} ${key.handler}`;

/**
 * Records that each handler has applied its event, inside the handlers' own transaction, in one
 * statement. Returns a function telling whether a key is new here: a key already recorded (the
 * delivery is a duplicate) must change nothing. A concurrent duplicate blocks on the primary key
 * until the first commits, then sees the conflict.
 */
export async function claimEvents(trx: Transaction<MessagingTables>, keys: readonly InboxKey[]): Promise<(key: InboxKey) => boolean> {
  const distinct = [...new Map(keys.map((key) => [keyOf(key), key])).values()];
  // Arrays rather than one VALUES row per key: the same text whatever the batch, so it is prepared once.
  const { rows } = await sql<{ event_id: string; handler: string }>`
    insert into processed_events (event_id, handler)
    select * from unnest(${distinct.map((key) => key.eventId)}::uuid[], ${distinct.map((key) => key.handler)}::text[])
    on conflict do nothing
    returning event_id, handler`.execute(trx);
  // A key given twice is new only the first time it is asked about.
  const fresh = new Set(rows.map((row) => keyOf({ eventId: row.event_id, handler: row.handler })));
  return (key: InboxKey) => fresh.delete(keyOf(key));
}

/** claimEvents for one key: false when the event was already applied by this handler. */
export async function claimEvent(trx: Transaction<MessagingTables>, eventId: string, handler: string): Promise<boolean> {
  const isNew = await claimEvents(trx, [{ eventId, handler }]);
  return isNew({ eventId, handler });
}
