import { errorResponses, HttpError, type HttpApp } from '@checkout-saga/shared';
import { Type, type TSchema } from 'typebox';
import { DashboardStream, defaultStreamOptions, type StreamOptions } from './event-stream.ts';
import { defaultFeedOptions, resumePoint, SagaFeed, type FeedOptions } from './feed.ts';
import { pageRoot, pageRoutes } from './page.ts';
import { DashboardPanels } from './panels.ts';
import type { DashboardConfig } from './settings.ts';
import type { DashboardSource } from './source.ts';
import type { DashboardSettings, DashboardState } from './wire.ts';

/** Orders GET /dashboard/state lists. */
const RECENT_ORDERS = 100;

const EventsQuery = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0, examples: [0] })) });
const EventsHeaders = Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 40 })) });

const SourceStatus = Type.Union([Type.Literal('ok'), Type.Literal('not_configured'), Type.Literal('unreachable')]);
const Count = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
/** DashboardState (wire.ts) as a schema, for the OpenAPI document; wire.ts stays the type the page and this route share. */
const dashboardStateSchema = (order: TSchema) => Type.Unsafe<DashboardState>(Type.Object(
  {
    resumeFrom: Type.Integer({ minimum: 0 }),
    settings: Type.Object({
      sagaTimeoutMs: Type.Integer(),
      paymentProcessingMs: Type.Union([Type.Integer(), Type.Null()]),
      slowPayment: Type.Object({ available: Type.Boolean(), reason: Type.String() }),
    }),
    orders: Type.Array(order),
    products: Type.Object({
      status: SourceStatus,
      setting: Type.String(),
      products: Type.Array(Type.Object({ sku: Type.String(), name: Type.String(), price: Type.String(), stock: Type.Integer() })),
      error: Type.Optional(Type.String()),
    }),
    reliability: Type.Object({
      services: Type.Array(
        Type.Object({
          service: Type.Union([Type.Literal('order'), Type.Literal('payment'), Type.Literal('inventory'), Type.Literal('notification')]),
          status: SourceStatus,
          setting: Type.Optional(Type.String()),
          outboxBacklog: Count,
          retried: Count,
          deadLettered: Count,
          error: Type.Optional(Type.String()),
        }),
      ),
      sagasTimedOut: Type.Integer({ minimum: 0 }),
    }),
  },
  { description: 'Everything the dashboard page shows, and where its event stream resumes' },
));

/** What the dashboard can say about the slow-payment scenario with this configuration. */
export function pageSettings(config: Pick<DashboardConfig, 'SAGA_TIMEOUT_MS' | 'DASHBOARD_PAYMENT_PROCESSING_MS'>): DashboardSettings {
  const timeout = config.SAGA_TIMEOUT_MS;
  const processing = config.DASHBOARD_PAYMENT_PROCESSING_MS ?? null;
  const needs = `payment's PAYMENT_PROCESSING_MS above this order service's SAGA_TIMEOUT_MS (${timeout} ms)`;
  if (processing === null) {
    return {
      sagaTimeoutMs: timeout,
      paymentProcessingMs: null,
      slowPayment: {
        available: false,
        reason: `Needs ${needs}. The order service is not told how long payment takes: set DASHBOARD_PAYMENT_PROCESSING_MS to payment's PAYMENT_PROCESSING_MS.`,
      },
    };
  }
  if (processing <= timeout) {
    return {
      sagaTimeoutMs: timeout,
      paymentProcessingMs: processing,
      slowPayment: { available: false, reason: `Needs ${needs}; payment takes ${processing} ms per charge (DASHBOARD_PAYMENT_PROCESSING_MS), so orders finish in time.` },
    };
  }
  return {
    sagaTimeoutMs: timeout,
    paymentProcessingMs: processing,
    slowPayment: {
      available: true,
      reason: `Payment takes ${processing} ms per charge, longer than SAGA_TIMEOUT_MS (${timeout} ms): the order is cancelled for timeout, and the charge that lands later is refunded.`,
    },
  };
}

/** A Last-Event-ID the stream understands: a saga_history id. */
function lastEventId(header: string | undefined): number | undefined {
  return header !== undefined && /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : undefined;
}

/**
 * The dashboard: GET / (the page), GET /dashboard/state and GET /dashboard/events. It only
 * reads: orders are placed through POST /orders like any client's.
 */
export function dashboardRoutes(
  app: HttpApp,
  { db, outbox, config, logger, metrics, orders }: DashboardSource,
  options: { feed?: Partial<FeedOptions>; stream?: Partial<StreamOptions> } = {},
): void {
  const log = logger.child({ component: 'dashboard' });
  const panels = new DashboardPanels(db, config, metrics, log);
  const streamOptions = { ...defaultStreamOptions, ...options.stream };
  const feed = new SagaFeed(db, orders.view, log, { ...defaultFeedOptions, ...options.feed }, (steps) => events.stepsDelivered(steps));
  const events = new DashboardStream(feed, panels, log, streamOptions);
  outbox.onCommit(() => feed.wake());

  pageRoutes(app, pageRoot());

  app.get('/dashboard/state', { schema: { summary: "The dashboard's snapshot", response: { 200: dashboardStateSchema(orders.schema) } } }, async (): Promise<DashboardState> => {
    // One snapshot: every history row up to resumeFrom is reflected in these orders.
    const snapshot = await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        const resumeFrom = await resumePoint(trx);
        const rows = await trx.selectFrom('orders').selectAll().orderBy('created_at', 'desc').orderBy('order_id', 'desc').limit(RECENT_ORDERS).execute();
        return { resumeFrom, orders: rows.map(orders.view) };
      });
    const [products, reliability] = await Promise.all([panels.products(), panels.reliability()]);
    return { ...snapshot, settings: pageSettings(config), products, reliability };
  });

  const eventsSchema = {
    summary: "The dashboard's live feed (server-sent events: saga steps and panel updates)",
    querystring: EventsQuery,
    headers: EventsHeaders,
    response: {
      200: { description: 'A text/event-stream that stays open', content: { 'text/event-stream': { schema: Type.String() } } },
      ...errorResponses({ 503: 'Too many pages stream already; try again later' }),
    },
  };
  app.get('/dashboard/events', { schema: eventsSchema }, async (request, reply) => {
    if (events.isFull) throw new HttpError(503, 'too_many_streams', `this order service already streams to ${streamOptions.maxClients} pages; try again later`);
    // A reconnecting browser sends Last-Event-ID; a page opening the stream for the first time says ?after=<resumeFrom>.
    const after = lastEventId(request.headers['last-event-id']) ?? request.query.after;
    reply.hijack();
    await events.open(reply.raw, after);
  });

  app.addHook('preClose', async () => events.closeAll());
  app.addHook('onClose', async () => {
    await events.stop();
    await feed.stop();
  });
}
