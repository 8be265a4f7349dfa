import type { ServerResponse } from 'node:http';
import type { Logger } from '@checkout-saga/shared';
import type { FeedClient, SagaFeed } from './feed.ts';
import type { DashboardPanels } from './panels.ts';
import type { ProductsPanel, ReliabilityPanel, SagaStep } from './wire.ts';

/*
 * GET /dashboard/events: Server-Sent Events for the dashboard page.
 *
 *   event: saga          id: <resume point>   data: SagaStep (one saga_history row and its order)
 *   event: products      data: ProductsPanel      (when the catalogue changed)
 *   event: reliability   data: ReliabilityPanel   (when a counter changed)
 *   event: reset         id: <resume point>   data: {}  (too far behind to replay: reload the state)
 *
 * The id of a saga message is a saga_history id up to which the client has every row, so a
 * browser that reconnects with Last-Event-ID misses nothing (it may get a row twice while a
 * concurrent transaction is still committing; the page ignores repeats by row id). The
 * panels are read again when saga steps arrive (stock moves with reservations, a refund
 * follows a cancellation) and every panelsIntervalMs while a page is connected, and are sent
 * only when they changed.
 */

export interface StreamOptions {
  maxClients: number;
  heartbeatMs: number;
  panelsIntervalMs: number;
  /** A client that lets this much pile up unread is dropped; it reconnects and catches up. */
  maxBufferedBytes: number;
}

export const defaultStreamOptions: StreamOptions = { maxClients: 100, heartbeatMs: 15_000, panelsIntervalMs: 5000, maxBufferedBytes: 1024 * 1024 };

export function frame(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

interface Connection {
  raw: ServerResponse;
  client: FeedClient;
}

export class DashboardStream {
  private readonly connections = new Set<Connection>();
  private heartbeat: NodeJS.Timeout | undefined;
  private panelsTimer: NodeJS.Timeout | undefined;
  private readonly soon = new Set<NodeJS.Timeout>();
  private latest: { products?: string; reliability?: string } = {};
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private closed = false;

  constructor(
    private readonly feed: SagaFeed,
    private readonly panels: DashboardPanels,
    private readonly logger: Logger,
    private readonly options: StreamOptions = defaultStreamOptions,
  ) {}

  get isFull(): boolean {
    return this.connections.size >= this.options.maxClients;
  }

  /** Takes over a response (already hijacked from fastify) and streams to it until either side closes. */
  async open(raw: ServerResponse, after: number | undefined): Promise<void> {
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // a proxy in front must not buffer the stream
    });
    raw.write('retry: 2000\n\n');
    const connection: Connection = {
      raw,
      client: {
        after: 0,
        step: (step, resumeFrom) => this.write(connection, frame('saga', step, resumeFrom)),
        reset: (resumeFrom) => this.write(connection, frame('reset', {}, resumeFrom)),
      },
    };
    let gone = false;
    raw.on('close', () => {
      gone = true;
      this.drop(connection);
    });
    if (this.latest.products) raw.write(`event: products\ndata: ${this.latest.products}\n\n`);
    if (this.latest.reliability) raw.write(`event: reliability\ndata: ${this.latest.reliability}\n\n`);

    this.connections.add(connection);
    this.start();
    const subscribed = await this.feed.subscribe(connection.client, after);
    if (gone || this.closed || !subscribed) {
      // Gone meanwhile, shutting down, or the history could not be read: end it; a browser comes back after `retry`.
      this.drop(connection);
      if (!raw.writableEnded) raw.end();
      return;
    }
    this.feed.wake();
    this.refreshSoon(0);
  }

  /** Saga steps were delivered: the catalogue and the counters have probably moved. */
  stepsDelivered(steps: readonly SagaStep[]): void {
    if (steps.length === 0) return;
    this.refreshSoon(150);
    this.refreshSoon(1500); // a release or a refund lands in the other service a moment after the order service's step
  }

  /** Ends every stream (before the HTTP server closes, which would otherwise wait for them). */
  closeAll(): void {
    this.closed = true;
    for (const connection of [...this.connections]) {
      connection.raw.end();
      this.drop(connection);
    }
    for (const timer of this.soon) clearTimeout(timer);
    this.soon.clear();
  }

  async stop(): Promise<void> {
    this.closeAll();
    await this.refreshing;
  }

  private start(): void {
    this.heartbeat ??= setInterval(() => {
      for (const connection of this.connections) this.write(connection, ': keep-alive\n\n');
    }, this.options.heartbeatMs);
    this.heartbeat.unref();
    this.panelsTimer ??= setInterval(() => this.refreshSoon(0), this.options.panelsIntervalMs);
    this.panelsTimer.unref();
  }

  private drop(connection: Connection): void {
    this.feed.unsubscribe(connection.client);
    if (!this.connections.delete(connection) || this.connections.size > 0) return;
    clearInterval(this.heartbeat);
    clearInterval(this.panelsTimer);
    this.heartbeat = undefined;
    this.panelsTimer = undefined;
  }

  private write(connection: Connection, text: string): void {
    const { raw } = connection;
    if (raw.destroyed || raw.writableEnded) return this.drop(connection);
    if (raw.writableLength > this.options.maxBufferedBytes) {
      this.logger.info('dashboard stream client is not reading; dropped (it reconnects and catches up)');
      raw.destroy();
      return this.drop(connection);
    }
    raw.write(text);
  }

  private broadcast(text: string): void {
    for (const connection of this.connections) this.write(connection, text);
  }

  private refreshSoon(delayMs: number): void {
    if (this.closed || this.connections.size === 0) return;
    const timer = setTimeout(() => {
      this.soon.delete(timer);
      void this.refreshPanels();
    }, delayMs);
    timer.unref();
    this.soon.add(timer);
  }

  /** Reads both panels and sends whichever changed; one read at a time, and one more if asked meanwhile. */
  private async refreshPanels(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        if (this.closed || this.connections.size === 0) break;
        const [products, reliability] = await Promise.all([this.panels.products(), this.panels.reliability()]).catch((error: Error) => {
          this.logger.warn({ err: error.message }, 'dashboard could not read its panels');
          return [undefined, undefined] as const;
        });
        this.send('products', products);
        this.send('reliability', reliability);
      } while (this.refreshAgain);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private send(event: 'products' | 'reliability', panel: ProductsPanel | ReliabilityPanel | undefined): void {
    if (!panel) return;
    const text = JSON.stringify(panel);
    if (this.latest[event] === text) return;
    this.latest[event] = text;
    this.broadcast(`event: ${event}\ndata: ${text}\n\n`);
  }
}
