import { randomFillSync } from 'node:crypto';
import { trace, TraceFlags } from '@opentelemetry/api';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The W3C `traceparent` for a step caused by `parent`: the same trace id with a new span id,
 * so one saga's messages share a trace across every service. A missing or malformed parent
 * starts a new trace.
 *
 * When the step is being recorded (tracing is on and a span is active, already a child of
 * `parent`), it is that span's own traceparent, so what the step writes names a span that is
 * exported. With tracing off the API has no context to look in and this is a null check.
 */
export function continueTrace(parent?: unknown): string {
  const active = trace.getActiveSpan()?.spanContext();
  if (active && trace.isSpanContextValid(active)) return `00-${active.traceId}-${active.spanId}-${active.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
  const match = typeof parent === 'string' ? TRACEPARENT.exec(parent.trim().toLowerCase()) : null;
  const traceId = match && !/^0+$/.test(match[1]!) ? match[1]! : randomHex(16);
  const flags = match?.[3] ?? '01';
  return `00-${traceId}-${randomHex(8)}-${flags}`;
}

// Ids come out of a pool filled 4 KiB at a time: one call into the CSPRNG per 256 span ids, not one each.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  offset += bytes;
  return pool.toString('hex', offset - bytes, offset);
}

/** The trace id of a traceparent, for log lines; undefined when there is none. */
export function traceIdOf(traceparent?: unknown): string | undefined {
  return typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
}
