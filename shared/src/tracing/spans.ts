import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Span, type SpanOptions } from '@opentelemetry/api';
import { describeError } from '../consumer/failure.ts';
import type { Tracing } from './tracing.ts';

/** The W3C traceparent of the span in `ctx`, to store with a row or send with a message. */
export function traceparentIn(ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The remote context a stored or received traceparent names; the root context when there is none. */
export function contextFrom(headers: Record<string, unknown> | undefined): Context {
  const traceparent = headers?.traceparent;
  return typeof traceparent === 'string' ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/** Marks a span failed with the error's one-line description. */
export function failed(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
}

/**
 * Runs `work` in a new span (child of `parent`, else of the active context) made active for it, and
 * ends the span when the work settles. Without tracing it only runs the work: no span, no context.
 */
export async function inSpan<T>(tracing: Tracing | undefined, name: string, options: SpanOptions, parent: Context | undefined, work: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracing) return work(undefined);
  const base = parent ?? context.active();
  const span = tracing.tracer.startSpan(name, options, base);
  try {
    return await context.with(trace.setSpan(base, span), () => work(span));
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.end();
  }
}
