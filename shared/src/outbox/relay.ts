import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { ConfirmPublisher, OutboundMessage, PublishOutcome } from '../broker/confirm-publisher.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { startPublishSpans } from '../tracing/outbox-hop.ts';
import type { Tracing } from '../tracing/tracing.ts';
import { OUTBOX_NOTIFY_CHANNEL, type OutboxMessage } from './outbox.ts';

export interface RelayOptions {
  db: Kysely<MessagingTables>;
  publisher: ConfirmPublisher;
  exchange: string;
  batchSize: number;
  pollIntervalMs: number;
  logger: Logger;
  metrics?: Metrics;
  /** When set, the relay also LISTENs for rows committed by other processes. */
  listenUrl?: string;
  /**
   * Batches in flight at once, each claimed in its own transaction (one pool connection each):
   * while one waits for its confirms, the next is claimed and published. Default 1.
   */
  maxInFlightBatches?: number;
  /** When set, each message published is a span linked to the span that wrote its row. */
  tracing?: Tracing | undefined;
  /** Test hook: runs after a batch is confirmed by the broker and before it is marked published. */
  afterPublish?: (eventIds: string[]) => Promise<void> | void;
}

interface ClaimedRow extends OutboxMessage {
  id: number;
}

/**
 * Moves committed outbox rows to the broker, two ways.
 *
 * Rows committed through this process's Outbox arrive in memory (publishCommitted): they are
 * published at once, and marked in one UPDATE per round of confirms. Their claim keeps other
 * relays off them meanwhile; the database is not read at all on this path.
 *
 * Everything else (rows of a process that died before publishing, rows the broker refused,
 * rows written by plain SQL) is drained from the table: woken by the poll, by LISTEN/NOTIFY
 * when enabled, and by a failure on the first path. A batch is claimed FOR UPDATE SKIP LOCKED,
 * so any number of relays (and the batches one relay keeps in flight while working off a
 * backlog) share a table without publishing a row twice.
 *
 * Either way a row is marked published only once the broker confirmed it, so a crash anywhere
 * leaves it to be published again (consumers deduplicate).
 */
export class OutboxRelay {
  private running = false;
  private woken = false;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /**
   * Drains running now. A wake starts one when none runs (a wake during a drain makes it go round once more);
   * a full batch, the sign of a backlog, starts another, up to maxInFlightBatches. Wakes under steady load
   * thus do not split the rows into ever smaller batches.
   */
  private readonly lanes = new Set<Promise<void>>();
  private backlog = false;
  private readonly maxLanes: number;
  private listener: pg.Client | undefined;
  /** Publishes of committed messages waiting for their confirms. */
  private readonly direct = new Set<Promise<void>>();
  /** Confirmed event ids not yet marked, and the UPDATE marking the previous ones (one at a time, so marks coalesce). */
  private unmarked: string[] = [];
  private marking: Promise<void> | undefined;

  constructor(private readonly options: RelayOptions) {
    this.maxLanes = Math.max(1, options.maxInFlightBatches ?? 1);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.options.listenUrl) void this.listen(this.options.listenUrl);
    this.loop = this.run();
  }

  /** Asks for a drain as soon as possible; cheap enough to call after every commit. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /**
   * Publishes messages whose transaction has just committed with claimed rows (Outbox with
   * claimMs). When it cannot (stopped, broker away), or the broker refuses them, the claims
   * are released so the table drain takes the rows.
   */
  publishCommitted(messages: readonly OutboxMessage[]): void {
    if (messages.length === 0) return;
    const work = this.publishDirect(messages).finally(() => this.direct.delete(work));
    this.direct.add(work);
  }

  /** Stops after the committed messages in hand are confirmed and marked and one last drain, so what was committed before shutdown is published now rather than by the next instance. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await Promise.all(this.direct);
    await this.marking;
    this.wake();
    await this.loop;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
  }

  /** Publishes everything pending now; resolves with the number of rows published. */
  async drain(): Promise<number> {
    let total = 0;
    // Each batch starts after the last row of the one before: rows kept unpublished (unroutable ones, which stay
    // until a queue is bound) are passed over for the rest of this drain instead of being claimed again at the head.
    let after = '0';
    for (;;) {
      const { claimed, published, unroutable, lastId } = await this.publishBatch(after);
      total += published;
      after = lastId;
      // A short batch means the table is drained. A batch of which nothing went out for any reason but
      // "unroutable" means the broker is not taking messages now: wait for a wake or the poll. A batch that only
      // the broker's routing refused says nothing about the rows behind it, so the drain goes on past it.
      if (claimed < this.options.batchSize || (published === 0 && unroutable < claimed)) return total;
    }
  }

  private async run(): Promise<void> {
    let pollDue = true; // drain once at start
    while (this.running) {
      const idle = this.lanes.size === 0;
      if ((idle && (this.woken || pollDue)) || (this.backlog && this.lanes.size < this.maxLanes)) {
        this.woken = false;
        pollDue = false;
        this.backlog = false;
        const lane: Promise<void> = this.drainSafely().finally(() => {
          this.lanes.delete(lane);
          this.wakeUp?.();
        });
        this.lanes.add(lane);
        continue;
      }
      // Sleep until a wake, the end of a drain, or (only when none is running) the poll interval.
      pollDue = await new Promise<boolean>((resolve) => {
        const timer = this.lanes.size === 0 ? setTimeout(() => resolve(true), this.options.pollIntervalMs) : undefined;
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
      this.wakeUp = undefined;
    }
    await Promise.all(this.lanes);
    await this.drainSafely();
  }

  private async drainSafely(): Promise<void> {
    if (!this.options.publisher.isReady) return;
    try {
      await this.drain();
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'outbox drain failed; will retry');
    }
  }

  private async publishDirect(messages: readonly OutboxMessage[]): Promise<void> {
    const { publisher, metrics } = this.options;
    const ids = messages.map((message) => message.eventId);
    if (!this.running || !publisher.isReady) return this.release(ids, 'not connected to the broker');
    const started = performance.now();
    const outcomes = await this.publishAll(messages);
    metrics?.confirmLatency.observe((performance.now() - started) / 1000);
    await this.options.afterPublish?.(ids);

    const { confirmed, failed } = sortOutcomes(messages, outcomes, (message) => message.eventId);
    countUnroutable(metrics, messages, outcomes);
    metrics?.published.inc(confirmed.length);
    this.unmarked.push(...confirmed);
    this.marking ??= this.markConfirmed();
    for (const [error, failedIds] of failed) {
      metrics?.publishFailures.inc(failedIds.length);
      await this.release(failedIds, error);
    }
  }

  /** Publishes rows and waits for their confirms, each in a publish span when tracing. */
  private async publishAll(rows: readonly OutboxMessage[]): Promise<PublishOutcome[]> {
    const { publisher, exchange, tracing } = this.options;
    if (!tracing) return publisher.publishAll(rows.map((row) => toMessage(exchange, row)));
    const publishing = startPublishSpans(tracing, exchange, rows);
    const outcomes = await publisher.publishAll(rows.map((row, index) => toMessage(exchange, row, publishing.traceparents[index])));
    publishing.end(outcomes);
    return outcomes;
  }

  /** Marks confirmed rows published, all that have gathered in one UPDATE, until none are left. */
  private async markConfirmed(): Promise<void> {
    try {
      while (this.unmarked.length > 0) {
        const ids = this.unmarked;
        this.unmarked = [];
        await sql`update outbox set published_at = now(), claimed_until = null where event_id = any(${ids}::uuid[])`
          .execute(this.options.db)
          .catch((error: unknown) => {
            // Left claimed, the rows are published again once their claim runs out: duplicates, which consumers absorb.
            this.options.logger.warn({ rows: ids.length, err: (error as Error).message }, 'could not mark published outbox rows');
          });
      }
    } finally {
      this.marking = undefined;
    }
  }

  /** Hands rows back to the table drain at once, recording why they were not published. */
  private async release(ids: string[], error: string): Promise<void> {
    this.options.logger.warn({ rows: ids.length, err: error }, 'committed outbox rows not published directly; left to the relay drain');
    await sql`update outbox set claimed_until = null, attempts = attempts + 1, last_error = ${error} where event_id = any(${ids}::uuid[])`
      .execute(this.options.db)
      .catch(() => {}); // unreleased, their claim runs out and the poll takes them
    this.wake();
  }

  /** Claims, publishes and marks one batch of the rows after id `after`; `lastId` is the last row it claimed. */
  private async publishBatch(after: string): Promise<{ claimed: number; published: number; unroutable: number; lastId: string }> {
    const { db, publisher, batchSize, metrics } = this.options;
    const nothing = { claimed: 0, published: 0, unroutable: 0, lastId: after };
    if (!publisher.isReady) return nothing;
    return db.transaction().execute(async (trx) => {
      // Claimed rows are being published from memory by the process that committed them.
      const { rows } = await sql<ClaimedRow>`
        select id, event_id as "eventId", routing_key as "routingKey", envelope->>'type' as type,
               envelope->>'sagaId' as "sagaId", envelope::text as body, headers
        from outbox
        where published_at is null and (claimed_until is null or claimed_until < now()) and id > ${after}::bigint
        order by id limit ${batchSize}
        for update skip locked`.execute(trx);
      if (rows.length === 0) return nothing;
      // A full batch suggests more rows are waiting: let another drain claim them while this one publishes.
      if (rows.length === batchSize && this.running && this.lanes.size < this.maxLanes) {
        this.backlog = true;
        this.wakeUp?.();
      }

      const started = performance.now();
      const outcomes = await this.publishAll(rows);
      metrics?.confirmLatency.observe((performance.now() - started) / 1000);
      await this.options.afterPublish?.(rows.map((row) => row.eventId));

      const { confirmed, failed } = sortOutcomes(rows, outcomes, (row) => row.id);
      const unroutable = countUnroutable(metrics, rows, outcomes);
      if (confirmed.length > 0) {
        await sql`update outbox set published_at = now() where id = any(${confirmed}::bigint[])`.execute(trx);
      }
      for (const [error, ids] of failed) {
        await sql`update outbox set attempts = attempts + 1, last_error = ${error} where id = any(${ids}::bigint[])`.execute(trx);
        this.options.logger.warn({ rows: ids.length, err: error }, 'outbox rows not confirmed; kept for retry');
      }
      metrics?.published.inc(confirmed.length);
      if (failed.size > 0) metrics?.publishFailures.inc(rows.length - confirmed.length);
      return { claimed: rows.length, published: confirmed.length, unroutable, lastId: String(rows.at(-1)!.id) };
    });
  }

  private async listen(url: string): Promise<void> {
    while (this.running) {
      const client = new pg.Client({ connectionString: url });
      try {
        const closed = new Promise<void>((resolve) => {
          client.on('error', () => resolve());
          client.on('end', () => resolve());
        });
        await client.connect();
        client.on('notification', () => this.wake());
        await client.query(`listen ${OUTBOX_NOTIFY_CHANNEL}`);
        if (this.running) {
          this.listener = client;
          this.wake(); // rows may have been committed while we were not listening
          await closed;
        } // else stopped while connecting: stop() found no listener to end, so it is ended below
      } catch (error) {
        this.options.logger.warn({ err: (error as Error).message }, 'outbox listener failed; polling covers the gap');
      }
      await client.end().catch(() => {});
      if (this.running) await new Promise((resolve) => setTimeout(resolve, this.options.pollIntervalMs));
    }
  }
}

/** Splits publish outcomes into the keys of confirmed messages and, per error, the keys of the others. */
function sortOutcomes<T, K>(items: readonly T[], outcomes: readonly PublishOutcome[], keyOf: (item: T) => K): { confirmed: K[]; failed: Map<string, K[]> } {
  const confirmed: K[] = [];
  const failed = new Map<string, K[]>();
  outcomes.forEach((outcome, index) => {
    const key = keyOf(items[index]!);
    if (outcome.ok) confirmed.push(key);
    else failed.set(outcome.error, [...(failed.get(outcome.error) ?? []), key]);
  });
  return { confirmed, failed };
}

/** Counts the messages the broker returned as unroutable, by routing key, and returns how many there were. */
function countUnroutable(metrics: Metrics | undefined, items: readonly OutboxMessage[], outcomes: readonly PublishOutcome[]): number {
  let count = 0;
  outcomes.forEach((outcome, index) => {
    if (outcome.ok || !outcome.unroutable) return;
    count++;
    metrics?.unroutable.inc({ routing_key: items[index]!.routingKey });
  });
  return count;
}

/** The message for a row; it carries `traceparent` (the publish span's) when given, else the row's own. */
function toMessage(exchange: string, row: OutboxMessage, traceparent = row.headers.traceparent): OutboundMessage {
  return {
    exchange,
    routingKey: row.routingKey,
    body: Buffer.from(row.body),
    options: {
      messageId: row.eventId,
      type: row.type,
      correlationId: row.sagaId,
      contentType: 'application/json',
      persistent: true,
      headers: traceparent ? { traceparent } : {},
    },
  };
}
