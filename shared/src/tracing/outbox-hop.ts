import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { sql, type Transaction } from 'kysely';
import type { PublishOutcome } from '../broker/confirm-publisher.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { OutboxEntry, OutboxMessage } from '../outbox/outbox.ts';
import { contextFrom, traceparentIn } from './spans.ts';
import type { Tracing } from './tracing.ts';

/*
 * The hop through the outbox is this project's own, so its spans are written here by hand: the
 * span that writes a row stores its traceparent with the row, and the relay's publish span,
 * however much later and in whichever process, is linked to it through that stored context.
 */

/** Outbox rows being written, each in a span of its own whose traceparent the row stores. */
export interface RowsWritten {
  headers: Record<string, string>[];
  end(): void;
}

/**
 * Starts one span per row. Its parent is the active span (the transaction's) when the row's own
 * traceparent (the step that caused it) is of the same trace, else that step: rows of several
 * sagas written in one transaction each stay in their own saga's trace. A row that names no cause
 * (the timeout checker's cancellations) continues the trace of its saga's latest row, when the
 * outbox still has one, so the cancellation lands in the saga's trace.
 */
export async function startRowSpans(tracing: Tracing, trx: Transaction<MessagingTables>, entries: readonly OutboxEntry[]): Promise<RowsWritten> {
  const active = context.active();
  const transaction = trace.getSpanContext(active);
  const activeTrace = transaction?.traceId;
  const uncaused = [...new Set(entries.filter(({ headers }) => !headers.traceparent).map(({ event }) => event.sagaId))];
  const sagaTraces = uncaused.length > 0 ? await latestTraceOfSagas(trx, uncaused) : new Map<string, string>();
  const spans: Span[] = [];
  const headers = entries.map(({ event, headers: given }) => {
    const cause = given.traceparent ?? sagaTraces.get(event.sagaId);
    const caused = cause === undefined ? undefined : contextFrom({ traceparent: cause });
    const causeTrace = caused && trace.getSpanContext(caused)?.traceId;
    const parent: Context = caused && causeTrace !== activeTrace ? caused : active;
    const span = tracing.tracer.startSpan(
      `outbox write ${event.type}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { 'messaging.message.id': event.eventId, 'saga.id': event.sagaId, 'order.id': event.orderId, 'event.type': event.type },
        // A row parented in another trace than its transaction's keeps a link to the transaction that wrote it.
        links: parent !== active && transaction ? [{ context: transaction, attributes: { 'link.reason': 'written in transaction' } }] : [],
      },
      parent,
    );
    spans.push(span);
    const traceparent = traceparentIn(trace.setSpan(parent, span));
    return traceparent ? { ...given, traceparent } : given;
  });
  return { headers, end: () => spans.forEach((span) => span.end()) };
}

/** The traceparent of each saga's most recent outbox row that has one. */
async function latestTraceOfSagas(trx: Transaction<MessagingTables>, sagaIds: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await sql<{ sagaId: string; traceparent: string }>`
    select distinct on (envelope->>'sagaId') envelope->>'sagaId' as "sagaId", headers->>'traceparent' as traceparent
    from outbox
    where envelope->>'sagaId' = any(${sagaIds}::text[]) and headers ? 'traceparent'
    order by envelope->>'sagaId', id desc`.execute(trx);
  return new Map(rows.map((row) => [row.sagaId, row.traceparent]));
}

/** Messages being published, each in a span whose traceparent the message carries. */
export interface Publishing {
  traceparents: (string | undefined)[];
  end(outcomes: readonly PublishOutcome[]): void;
}

/**
 * One publish span per row, linked to the span that wrote the row (through the context stored with
 * it) and its child, so the saga's trace runs on unbroken into the consumer; the message then
 * carries the publish span's own context.
 */
export function startPublishSpans(tracing: Tracing, exchange: string, rows: readonly OutboxMessage[]): Publishing {
  const spans = rows.map((row) => {
    const written = contextFrom(row.headers);
    const writer = trace.getSpanContext(written);
    return tracing.tracer.startSpan(
      `publish ${row.routingKey}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'send',
          'messaging.destination.name': exchange,
          'messaging.rabbitmq.destination.routing_key': row.routingKey,
          'messaging.message.id': row.eventId,
          'saga.id': row.sagaId,
        },
        links: writer ? [{ context: writer, attributes: { 'link.reason': 'outbox row written' } }] : [],
      },
      written,
    );
  });
  return {
    traceparents: spans.map((span, index) => traceparentIn(trace.setSpan(contextFrom(rows[index]!.headers), span))),
    end(outcomes) {
      spans.forEach((span, index) => {
        const outcome = outcomes[index];
        if (outcome && !outcome.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
        span.end();
      });
    },
  };
}
