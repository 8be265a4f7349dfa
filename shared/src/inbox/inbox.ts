import type { Transaction } from 'kysely';
import type { MessagingTables } from '../db/messaging-tables.ts';

/**
 * Records that `handler` has applied `eventId`, inside the handler's own transaction.
 * Returns false when it already had: the delivery is a duplicate and must change nothing.
 * A concurrent duplicate blocks on the primary key until the first commits, then sees the conflict.
 */
export async function claimEvent(trx: Transaction<MessagingTables>, eventId: string, handler: string): Promise<boolean> {
  const result = await trx
    .insertInto('processed_events')
    .values({ event_id: eventId, handler })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}
