import { SpanKind } from '@opentelemetry/api';
import { sql, type Kysely, type Transaction } from 'kysely';
import { routingKeyOf } from '../contracts/events.ts';
import type { Envelope } from '../contracts/envelope.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import { sendAhead } from '../db/pipelined-driver.ts';
import { startRowSpans } from '../tracing/outbox-hop.ts';
import { inSpan } from '../tracing/spans.ts';
import type { Tracing } from '../tracing/tracing.ts';

export const OUTBOX_NOTIFY_CHANNEL = 'outbox';

/** One outbox row as the relay publishes it: the envelope already serialised, exactly as stored. */
export interface OutboxMessage {
  eventId: string;
  routingKey: string;
  type: string;
  sagaId: string;
  body: string;
  headers: Record<string, string>;
}

/** An event to add to the outbox, with the message headers it travels with (traceparent). */
export interface OutboxEntry {
  event: Envelope;
  headers: Record<string, string>;
}

export interface OutboxOptions {
  notify: boolean;
  /** Called after every transaction `transaction()` commits, with the messages it added (often none). */
  onCommit(messages: readonly OutboxMessage[]): void;
  /**
   * When set, new rows are claimed for this long by this process: its relay publishes them
   * straight from memory after the commit (OutboxRelay.publishCommitted), and other relays
   * leave them alone until the claim runs out.
   */
  claimMs?: number;
  /** When set, each transaction and each row written is a span, and a row stores its span's traceparent. */
  tracing?: Tracing | undefined;
}

/**
 * The write side of the outbox. `transaction` runs a unit of work and, once it has committed,
 * hands the messages it added to `onCommit`: no database round trip and no wait for a poll.
 * `enqueue` adds events to such a unit of work (a handler's transaction is one), and throws
 * given any other transaction, or one that has ended.
 */
export class Outbox<DB extends MessagingTables> {
  private readonly added = new WeakMap<object, OutboxMessage[]>();
  private readonly commitListeners: (() => void)[] = [];

  constructor(
    private readonly db: Kysely<DB>,
    private readonly options: OutboxOptions,
  ) {}

  enqueue(trx: Transaction<DB>, events: Envelope | readonly Envelope[], headers: Record<string, string> = {}): Promise<void> {
    const list = Array.isArray(events) ? events : [events as Envelope];
    return this.enqueueEach(
      trx,
      list.map((event) => ({ event, headers })),
    );
  }

  /** Adds events with headers of their own (a batch of handlers, each continuing its message's trace), in one statement. */
  async enqueueEach(trx: Transaction<DB>, entries: readonly OutboxEntry[]): Promise<void> {
    const added = this.added.get(trx);
    // Rows added in another transaction would be claimed for this process's relay, yet never handed
    // to it after the commit: they would wait out the whole claim (OUTBOX_CLAIM_MS) unpublished.
    if (!added) throw new Error('Outbox.enqueue needs a transaction of outbox.transaction() (a handler\'s trx is one) that is still open');
    if (entries.length === 0) return;
    const kit = trx as unknown as Transaction<MessagingTables>;
    const { tracing } = this.options;
    const rows = tracing ? await startRowSpans(tracing, kit, entries) : undefined;
    const messages = entries.map(({ event, headers }, index) => ({
      eventId: event.eventId,
      routingKey: routingKeyOf(event.type),
      type: event.type,
      sagaId: event.sagaId,
      body: JSON.stringify(event),
      headers: rows?.headers[index] ?? headers,
    }));
    // Arrays rather than one VALUES row per event: the same text for any number of rows, so it is prepared once.
    // Nothing waits for its answer: COMMIT, written right behind it, fails if it did.
    const insert = sql`
      insert into outbox (event_id, routing_key, envelope, headers, claimed_until)
      select event_id, routing_key, envelope, headers, clock_timestamp() + ${this.options.claimMs ?? null}::integer * interval '1 millisecond'
      from unnest(${messages.map((message) => message.eventId)}::uuid[], ${messages.map((message) => message.routingKey)}::text[],
                  ${messages.map((message) => message.body)}::jsonb[], ${messages.map((message) => JSON.stringify(message.headers))}::jsonb[])
           as rows (event_id, routing_key, envelope, headers)`;
    await sendAhead(kit, insert.compile(kit));
    if (this.options.notify) await sendAhead(kit, sql`select pg_notify(${OUTBOX_NOTIFY_CHANNEL}, '')`.compile(kit));
    rows?.end();
    added.push(...messages);
  }

  /** Calls `listener` after every transaction `transaction()` commits, with or without events (read models, live views). */
  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  /** Runs `work` in one transaction; the messages it enqueued are handed on as soon as it commits. */
  transaction<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    const { tracing } = this.options;
    if (!tracing) return this.run(work);
    return inSpan(tracing, 'db transaction', { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql' } }, undefined, () => this.run(work));
  }

  private async run<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    const added: OutboxMessage[] = [];
    const result = await this.db.transaction().execute(async (trx) => {
      this.added.set(trx, added);
      try {
        return await work(trx);
      } finally {
        this.added.delete(trx);
      }
    });
    this.options.onCommit(added);
    for (const listener of this.commitListeners) listener();
    return result;
  }
}
