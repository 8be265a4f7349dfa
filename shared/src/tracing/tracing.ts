import { context, propagation, type Tracer } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace';
import { tracesUrl, type TracingSettings } from './settings.ts';

/** A service's own tracer provider, started because an OTLP endpoint is set. */
export interface Tracing {
  readonly tracer: Tracer;
  /** The provider, for instrumentations that take one (@fastify/otel). */
  readonly provider: import('@opentelemetry/api').TracerProvider;
  /** Exports the spans ended so far now, rather than at the next scheduled export. */
  flush(): Promise<void>;
  /** Exports what is buffered and stops; the service's last step. */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing for one service when the settings name an endpoint; otherwise returns undefined
 * and loads nothing: the OpenTelemetry API stays the no-op it is by default, so tracing off costs a
 * null check where spans would start. The SDK is imported only here, on demand.
 *
 * Each service gets a provider of its own rather than the global one: the tests (and a developer's
 * one-process run) host all four services in one process, and each span must carry its own
 * service.name. The context manager and propagator are process-wide, and the same for every service.
 */
export async function startTracing(settings: TracingSettings): Promise<Tracing | undefined> {
  const url = tracesUrl(settings);
  if (!url) return undefined;
  const [{ TracerProvider, BatchSpanProcessor }, { resourceFromAttributes }, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
  ]);
  if (!processWide) {
    processWide = true;
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  }
  const protocol = settings.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? settings.OTEL_EXPORTER_OTLP_PROTOCOL;
  // Both exporters read OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION themselves; the URL is given
  // because a service's settings may come from somewhere other than process.env (a test hosting four services).
  const { OTLPTraceExporter } = protocol === 'http/json' ? await import('@opentelemetry/exporter-trace-otlp-http') : await import('@opentelemetry/exporter-trace-otlp-proto');
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.OTEL_SERVICE_NAME }),
    sampler: await sampler(settings),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) })],
  });
  return {
    tracer: provider.getTracer('@checkout-saga/shared'),
    provider,
    flush: () => provider.forceFlush(),
    // Bounded: a collector that does not answer must not hold a graceful shutdown past SHUTDOWN_TIMEOUT_MS (the export timeout alone is 10 s).
    shutdown: () => Promise.race([provider.shutdown(), new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_EXPORT_MS).unref())]),
  };
}

let processWide = false;

/** How long stopping a service waits for its last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 2000;

/** OTEL_TRACES_SAMPLER as the spec names them; SDK 3 no longer reads it from the environment itself. */
async function sampler(settings: TracingSettings): Promise<Sampler> {
  const { AlwaysOnSampler, AlwaysOffSampler, TraceIdRatioBasedSampler, ParentBasedSampler } = await import('@opentelemetry/sdk-trace');
  const ratio = () => new TraceIdRatioBasedSampler(settings.OTEL_TRACES_SAMPLER_ARG);
  switch (settings.OTEL_TRACES_SAMPLER) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}
