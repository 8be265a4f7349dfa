import { sql, type Kysely } from 'kysely';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { Logger } from '../logger.ts';

const EVERY_MS = 60_000;
const BATCH = 10_000;

/** Deletes published outbox rows and old inbox rows in small batches, so neither table grows without end. */
export class RetentionJanitor {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Kysely<MessagingTables>,
    private readonly retention: { outboxMs: number; inboxMs: number },
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((error: Error) => this.logger.warn({ err: error.message }, 'retention sweep failed')), EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sweep(): Promise<{ outbox: number; inbox: number }> {
    const outbox = await this.deleteBatches(
      (limit) => sql`delete from outbox where id in (select id from outbox where published_at < now() - make_interval(secs => ${this.retention.outboxMs / 1000}) limit ${limit})`,
    );
    const inbox = await this.deleteBatches(
      (limit) => sql`delete from processed_events where (event_id, handler) in (select event_id, handler from processed_events where processed_at < now() - make_interval(secs => ${this.retention.inboxMs / 1000}) limit ${limit})`,
    );
    return { outbox, inbox };
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
