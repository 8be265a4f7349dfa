import { sql, type Kysely } from 'kysely';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { Logger } from '../logger.ts';

const EVERY_MS = 60_000;
const BATCH = 10_000;

/** A table of a service's own whose rows are deleted once they are older than `keepMs` (idempotency keys, say). */
export interface RetentionRule {
  table: string;
  /** A column that identifies a row (the primary key), so a batch can be chosen and deleted in one statement. */
  key: string;
  /** The column holding when the row was stored; index it. */
  storedAt: string;
  keepMs: number;
}

/**
 * Deletes published outbox rows, old inbox rows and the rows of the service's own rules in
 * small batches, so no such table grows without end. A row is kept at least its retention
 * and deleted within a sweep interval (a minute) after.
 */
export class RetentionJanitor {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Kysely<MessagingTables>,
    private readonly retention: { outboxMs: number; inboxMs: number; rules?: readonly RetentionRule[] },
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((error: Error) => this.logger.warn({ err: error.message }, 'retention sweep failed')), EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Deletes what is past its retention now; resolves with the rows deleted per table. */
  async sweep(): Promise<{ outbox: number; inbox: number } & Record<string, number>> {
    const outbox = await this.deleteBatches(
      (limit) => sql`delete from outbox where id in (select id from outbox where published_at < now() - make_interval(secs => ${this.retention.outboxMs / 1000}) limit ${limit})`,
    );
    const inbox = await this.deleteBatches(
      (limit) => sql`delete from processed_events where (event_id, handler) in (select event_id, handler from processed_events where processed_at < now() - make_interval(secs => ${this.retention.inboxMs / 1000}) limit ${limit})`,
    );
    const deleted: Record<string, number> = {};
    for (const { table, key, storedAt, keepMs } of this.retention.rules ?? []) {
      deleted[table] = await this.deleteBatches(
        (limit) =>
          sql`delete from ${sql.table(table)} where ${sql.ref(key)} in (select ${sql.ref(key)} from ${sql.table(table)} where ${sql.ref(storedAt)} < now() - make_interval(secs => ${keepMs / 1000}) limit ${limit})`,
      );
    }
    return { ...deleted, outbox, inbox };
  }

  private async deleteBatches(statement: (limit: number) => ReturnType<typeof sql>): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await statement(BATCH).execute(this.db);
      const deleted = Number(result.numAffectedRows ?? 0);
      total += deleted;
      if (deleted < BATCH) return total;
    }
  }
}
