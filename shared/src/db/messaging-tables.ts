import type { ColumnType, Generated } from 'kysely';

/*
 * The tables the messaging kit owns in every service database, as created by
 * database/migrations/messaging. Column names and types mirror the migration exactly.
 */

export interface OutboxTable {
  id: Generated<number>;
  event_id: string;
  routing_key: string;
  envelope: ColumnType<unknown, string, string>;
  headers: ColumnType<Record<string, string>, string | undefined, string>;
  created_at: Generated<Date>;
  published_at: Date | null;
  claimed_until: Date | null;
  attempts: Generated<number>;
  last_error: string | null;
}

export interface ProcessedEventsTable {
  event_id: string;
  handler: string;
  processed_at: Generated<Date>;
}

export interface MessagingTables {
  outbox: OutboxTable;
  processed_events: ProcessedEventsTable;
}
