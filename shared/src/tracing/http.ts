import type { HttpApp } from '../http/server.ts';
import type { Tracing } from './tracing.ts';

/** Probes and documents: polled all day, they would bury the saga traces. */
const UNTRACED = /^\/(health|ready|metrics|openapi\.json|docs)(\/|\?|$)/;

/**
 * Records a span for every HTTP request with @fastify/otel (fastify's own instrumentation, made for
 * fastify 5), whose route handler span is active while the handler runs, so the handler's transaction
 * and the outbox rows it writes are its children. The plugin is applied to the app directly rather
 * than through the instrumentation's module hooks: it is given this service's provider, and nothing
 * depends on load order. A caller's traceparent header is the request span's parent.
 */
export async function traceHttp(app: HttpApp, tracing: Tracing): Promise<void> {
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    ignorePaths: ({ url }) => UNTRACED.test(url),
    requestHook: (span, request) => span.updateName(`${request.method} ${request.routeOptions.url ?? 'unknown route'}`),
    // Route handlers here are anonymous: the span would be named after the plugin chain that registered them.
    lifecycleHook: (span, { hookName, request }) => {
      if (hookName === 'handler') span.updateName(`route ${request.method} ${request.routeOptions.url ?? 'unknown route'}`);
    },
  });
  instrumentation.setTracerProvider(tracing.provider);
  // Called, not registered: app.register would run it only once the app is ready, after the routes it must wrap are added.
  instrumentation.plugin()(app as never, {}, () => {});
}
