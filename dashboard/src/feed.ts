import type { OrdersTable, OrderTables } from '@checkout-saga/order';
import type { Logger } from '@checkout-saga/shared';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { HistoryCursor, resumePointOf, tailOf } from './history-cursor.ts';
import type { OrderSummary, SagaStep } from './wire.ts';

/*
 * The saga transitions this order service's database commits, as a stream for the dashboard.
 *
 * The feed reads saga_history by id, but only when there is a reason to: it is woken after
 * every transaction this process commits (Outbox.onCommit), and every fallbackMs for
 * rows other order instances commit. It reads nothing while no page is connected.
 */

export interface FeedOptions {
  /** Read anyway this often while a client is connected (other instances' commits). */
  fallbackMs: number;
  /** How long a skipped history id is waited for (see HistoryCursor). */
  gapMs: number;
  /** Rows per read. */
  batchSize: number;
  /** A client resuming further back than this many rows is told to reload instead. */
  catchUpLimit: number;
  /** How far below the newest id to look for rows still in flight. */
  window: number;
}

export const defaultFeedOptions: FeedOptions = { fallbackMs: 1000, gapMs: 10_000, batchSize: 500, catchUpLimit: 2000, window: 500 };

/** One connected page. */
export interface FeedClient {
  /** The client has every row up to this id. */
  after: number;
  /** Sends one saga row, with the id the client may resume from once it has it. */
  step(step: SagaStep, resumeFrom: number): void;
  /** Tells the client its gap is too large to replay: reload the state, then resume from resumeFrom. */
  reset(resumeFrom: number): void;
}

type Db = Kysely<OrderTables> | Transaction<OrderTables>;

/** The highest history id and the ids below it (within `window`) this reader cannot see. */
export async function historyTail(db: Db, window: number): Promise<{ max: number; missing: number[] }> {
  const rows = await db
    .selectFrom('saga_history')
    .select('id')
    .where('id', '>', sql<number>`(select coalesce(max(id), 0) from saga_history) - ${window}::integer`)
    .orderBy('id')
    .execute();
  return tailOf(
    rows.map((row) => Number(row.id)),
    window,
  );
}

/** Where a reader of this snapshot resumes the stream: every history row up to it is visible in the snapshot. */
export async function resumePoint(db: Db, window = defaultFeedOptions.window): Promise<number> {
  return resumePointOf(await historyTail(db, window));
}

export class SagaFeed {
  private readonly clients = new Set<FeedClient>();
  /** Set while clients are connected; a first client starts it afresh. */
  private cursor: HistoryCursor | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastWarning = 0;

  constructor(
    private readonly db: Kysely<OrderTables>,
    /** How the order API shows an order; each step carries its order so. */
    private readonly orderView: (row: Selectable<OrdersTable>) => OrderSummary,
    private readonly logger: Logger,
    private readonly options: FeedOptions = defaultFeedOptions,
    /** Told about the rows each read delivered (the dashboard refreshes its panels on them). */
    private readonly onSteps: (steps: SagaStep[]) => void = () => {},
  ) {}

  /** Something may have been committed: read soon, if anyone is listening. */
  wake(): void {
    if (this.stopped || this.clients.size === 0 || this.readQueued) return;
    this.readQueued = true;
    this.enqueue(async () => {
      this.readQueued = false;
      await this.read();
    });
  }

  /**
   * Adds a client that has every row up to `after` (undefined: it wants only what comes next):
   * first the committed rows after it are sent, then every new one as it is read. Resolves
   * false when the client could not be added (the database did not answer, or the feed stopped).
   */
  async subscribe(client: FeedClient, after: number | undefined): Promise<boolean> {
    let added = false;
    await this.enqueue(async () => {
      if (this.stopped) return;
      const cursor = (this.cursor ??= new HistoryCursor(await historyTail(this.db, this.options.window), this.options.gapMs, Date.now()));
      const from = after ?? cursor.watermark;
      client.after = from;
      if (from < cursor.position) {
        const rows = await this.steps((query) => query.where('h.id', '>', from).where('h.id', '<=', cursor.position), this.options.catchUpLimit + 1);
        if (rows.length > this.options.catchUpLimit) {
          client.after = cursor.watermark;
          client.reset(client.after);
        } else {
          const watermark = cursor.watermark;
          for (const row of rows) client.step(row, Math.max(from, Math.min(row.id, watermark)));
        }
      }
      this.cursor = cursor; // the last other client may have left (and dropped it) during the catch-up
      this.clients.add(client);
      added = true;
      if (!this.timer) {
        this.timer = setInterval(() => this.wake(), this.options.fallbackMs);
        this.timer.unref();
      }
    });
    return added;
  }

  unsubscribe(client: FeedClient): void {
    if (!this.clients.delete(client) || this.clients.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.cursor = undefined; // nobody depends on it now; the next client starts from the table as it is then
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const client of [...this.clients]) this.unsubscribe(client);
    await this.queue;
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((error: Error) => {
      // While the database is away this fails every fallbackMs: say so every 30 s, not every time.
      if (Date.now() - this.lastWarning < 30_000) return;
      this.lastWarning = Date.now();
      this.logger.warn({ err: error.message }, 'dashboard feed could not read the saga history; trying again on the next commit or poll');
    });
    this.queue = run;
    return run;
  }

  /** Reads what was committed since the last read (and skipped ids that showed up) and sends it to every client. */
  private async read(): Promise<void> {
    for (;;) {
      const cursor = this.cursor;
      if (!cursor || this.stopped) return;
      cursor.expire(Date.now());
      const pending = cursor.pending();
      const rows = await this.steps(
        (query) => query.where((eb) => eb.or([eb('h.id', '>', cursor.position), ...(pending.length ? [eb('h.id', 'in', pending)] : [])])),
        this.options.batchSize,
      );
      if (this.cursor !== cursor) return; // the last client left meanwhile
      const delivered: SagaStep[] = [];
      for (const row of rows) {
        if (!cursor.accept(row.id, Date.now())) continue;
        const watermark = cursor.watermark;
        for (const client of this.clients) if (row.id > client.after) client.step(row, Math.max(client.after, watermark));
        delivered.push(row);
      }
      if (delivered.length) this.onSteps(delivered);
      if (rows.length < this.options.batchSize) return;
    }
  }

  /** History rows joined with their orders, in id order. */
  private async steps(
    filter: (query: ReturnType<SagaFeed['stepsQuery']>) => ReturnType<SagaFeed['stepsQuery']>,
    limit: number,
  ): Promise<SagaStep[]> {
    const rows = await filter(this.stepsQuery()).orderBy('h.id').limit(limit).execute();
    return rows.map((row) => ({
      id: Number(row.id),
      sagaId: row.saga_id,
      orderId: row.order_id,
      eventId: row.event_id,
      type: row.type,
      fromState: row.from_state,
      toState: row.to_state,
      compensation: row.compensation,
      at: row.at.toISOString(),
      order: this.orderView(row),
    }));
  }

  private stepsQuery() {
    return this.db
      .selectFrom('saga_history as h')
      .innerJoin('orders as o', 'o.saga_id', 'h.saga_id')
      .select([
        'h.id',
        'h.saga_id',
        'h.event_id',
        'h.type',
        'h.from_state',
        'h.to_state',
        'h.compensation',
        'h.at',
        'o.order_id',
        'o.customer_id',
        'o.customer_email',
        'o.items',
        'o.amount_minor',
        'o.currency',
        'o.status',
        'o.reason',
        'o.created_at',
        'o.updated_at',
      ]);
  }
}
