import { sql, type Kysely, type Transaction } from 'kysely';
import { routingKeyOf } from '../contracts/events.ts';
import type { Envelope } from '../contracts/envelope.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';

export const OUTBOX_NOTIFY_CHANNEL = 'outbox';

/**
 * The write side of the outbox. `enqueue` adds events to the caller's transaction;
 * `transaction` runs a unit of work and, once it has committed with events in it, wakes
 * the relay in this process directly: no database round trip and no wait for a poll.
 */
export class Outbox<DB extends MessagingTables> {
  private readonly dirty = new WeakSet<object>();
  private readonly commitListeners: (() => void)[] = [];

  constructor(
    private readonly db: Kysely<DB>,
    private readonly options: { onCommit: () => void; notify: boolean },
  ) {}

  async enqueue(trx: Transaction<DB>, events: Envelope | readonly Envelope[], headers: Record<string, string> = {}): Promise<void> {
    const list = Array.isArray(events) ? events : [events as Envelope];
    if (list.length === 0) return;
    const kit = trx as unknown as Transaction<MessagingTables>;
    await kit
      .insertInto('outbox')
      .values(
        list.map((event) => ({
          event_id: event.eventId,
          routing_key: routingKeyOf(event.type),
          envelope: JSON.stringify(event),
          headers: JSON.stringify(headers),
          published_at: null,
          last_error: null,
        })),
      )
      .execute();
    if (this.options.notify) await sql`select pg_notify(${OUTBOX_NOTIFY_CHANNEL}, '')`.execute(kit);
    this.dirty.add(trx);
  }

  /** Calls `listener` after every transaction `transaction()` commits, with or without events (read models, live views). */
  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  /** Runs `work` in one transaction; events it enqueued are handed to the relay as soon as it commits. */
  async transaction<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    let wrote = false;
    const result = await this.db.transaction().execute(async (trx) => {
      const value = await work(trx);
      wrote = this.dirty.has(trx);
      return value;
    });
    if (wrote) this.options.onCommit();
    for (const listener of this.commitListeners) listener();
    return result;
  }
}
