import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { ConfirmPublisher, OutboundMessage } from '../broker/confirm-publisher.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { OUTBOX_NOTIFY_CHANNEL } from './outbox.ts';

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
  /** Test hook: runs after a batch is confirmed by the broker and before it is marked published. */
  afterPublish?: (eventIds: string[]) => Promise<void> | void;
}

interface ClaimedRow {
  id: number;
  event_id: string;
  routing_key: string;
  envelope: { type: string; sagaId: string };
  headers: Record<string, string>;
}

/**
 * Moves committed outbox rows to the broker. Woken in-process after each commit (and by
 * LISTEN/NOTIFY when enabled), with a poll as the fallback; each wake drains the table.
 * A batch is claimed FOR UPDATE SKIP LOCKED, so any number of relays (and the batches one
 * relay keeps in flight while working off a backlog) share a table without publishing a
 * row twice; rows are marked published only once the broker confirmed them, so a crash
 * anywhere leaves them to be published again (consumers deduplicate).
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

  /** Stops after one last drain, so what was committed before shutdown is published now rather than by the next instance. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
  }

  /** Publishes everything pending now; resolves with the number of rows published. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const { claimed, published } = await this.publishBatch();
      total += published;
      // A short batch means the table is drained; a batch of which nothing went out means the broker is not taking
      // messages now (wait for a wake or the poll). Rows refused one by one (unroutable) must not hold back the rest.
      if (claimed < this.options.batchSize || published === 0) return total;
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

  private async publishBatch(): Promise<{ claimed: number; published: number }> {
    const { db, publisher, exchange, batchSize, metrics } = this.options;
    if (!publisher.isReady) return { claimed: 0, published: 0 };
    return db.transaction().execute(async (trx) => {
      const { rows } = await sql<ClaimedRow>`
        select id, event_id, routing_key, envelope, headers from outbox
        where published_at is null order by id limit ${batchSize}
        for update skip locked`.execute(trx);
      if (rows.length === 0) return { claimed: 0, published: 0 };
      // A full batch suggests more rows are waiting: let another drain claim them while this one publishes.
      if (rows.length === batchSize && this.running && this.lanes.size < this.maxLanes) {
        this.backlog = true;
        this.wakeUp?.();
      }

      const started = performance.now();
      const outcomes = await publisher.publishAll(rows.map((row) => toMessage(exchange, row)));
      metrics?.confirmLatency.observe((performance.now() - started) / 1000);
      await this.options.afterPublish?.(rows.map((row) => row.event_id));

      const confirmed: number[] = [];
      const failed = new Map<string, number[]>();
      outcomes.forEach((outcome, index) => {
        const id = rows[index]!.id;
        if (outcome.ok) confirmed.push(id);
        else failed.set(outcome.error, [...(failed.get(outcome.error) ?? []), id]);
      });
      if (confirmed.length > 0) {
        await sql`update outbox set published_at = now() where id = any(${confirmed}::bigint[])`.execute(trx);
      }
      for (const [error, ids] of failed) {
        await sql`update outbox set attempts = attempts + 1, last_error = ${error} where id = any(${ids}::bigint[])`.execute(trx);
        this.options.logger.warn({ rows: ids.length, err: error }, 'outbox rows not confirmed; kept for retry');
      }
      metrics?.published.inc(confirmed.length);
      if (failed.size > 0) metrics?.publishFailures.inc(rows.length - confirmed.length);
      return { claimed: rows.length, published: confirmed.length };
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

function toMessage(exchange: string, row: ClaimedRow): OutboundMessage {
  const { traceparent } = row.headers;
  return {
    exchange,
    routingKey: row.routing_key,
    body: Buffer.from(JSON.stringify(row.envelope)),
    options: {
      messageId: row.event_id,
      type: row.envelope.type,
      correlationId: row.envelope.sagaId,
      contentType: 'application/json',
      persistent: true,
      headers: traceparent ? { traceparent } : {},
    },
  };
}
