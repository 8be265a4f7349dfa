import net from 'node:net';

export interface TcpProxy {
  port: number;
  host: '127.0.0.1';
  /** The same URL with host:port pointing at the proxy instead. */
  url(original: string): string;
  /** Destroys every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  /** Delays each chunk in both directions by `ms`, preserving order. */
  setLatency(ms: number): void;
  connectionCount(): number;
  close(): Promise<void>;
}

const END = Symbol('end');
type Item = { due: number; chunk: Buffer | typeof END };

/**
 * Forwards bytes from `from` to `to`. Delayed chunks go through one queue per
 * direction drained by one timer, because independent timers per chunk could
 * fire out of order when the latency changes mid-stream.
 */
class Pipe {
  private readonly queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    from: net.Socket,
    private readonly to: net.Socket,
    private readonly latency: () => number,
  ) {
    from.on('data', (chunk: Buffer) => this.push(from, chunk));
    from.on('end', () => this.push(from, END));
  }

  private push(from: net.Socket, chunk: Buffer | typeof END): void {
    const delay = this.latency();
    if (delay <= 0 && this.queue.length === 0) {
      // Undelayed traffic honours backpressure; delayed traffic is test-sized
      // and simply buffered.
      if (this.to.destroyed) return;
      if (chunk === END) this.to.end();
      else if (!this.to.write(chunk)) {
        from.pause();
        this.to.once('drain', () => from.resume());
      }
      return;
    }
    this.queue.push({ due: Date.now() + delay, chunk });
    this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer || !head) return;
    this.timer = setTimeout(() => this.drain(), Math.max(0, head.due - Date.now()));
  }

  private drain(): void {
    this.timer = undefined;
    const now = Date.now();
    for (let head = this.queue[0]; head && head.due <= now; head = this.queue[0]) {
      this.queue.shift();
      if (this.to.destroyed) continue;
      if (head.chunk === END) this.to.end();
      else this.to.write(head.chunk);
    }
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/**
 * A TCP proxy on 127.0.0.1 for fault injection: tests point a client at it,
 * then cut the link or slow it down to see how the code under test copes.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let refusing = false;
  let latencyMs = 0;
  const latency = () => latencyMs;
  // Each entry tears down one client/upstream pair; the set's size is the count.
  const links = new Set<() => void>();

  // Half-open sockets let each direction end on its own, after its queued
  // chunks, instead of Node ending our side the moment the peer's FIN arrives.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const pipes = [new Pipe(client, upstream, latency), new Pipe(upstream, client, latency)];
    const teardown = () => {
      if (!links.delete(teardown)) return;
      for (const pipe of pipes) pipe.stop();
      client.destroy();
      upstream.destroy();
    };
    links.add(teardown);
    // One side vanishing (reset, error, or both directions done) ends the link.
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no TCP address after listen');
  const port = address.port;

  // Torn down synchronously so connectionCount() is 0 right after cut().
  const destroyAll = () => {
    for (const teardown of [...links]) teardown();
  };
  let closing: Promise<void> | undefined;

  return {
    port,
    host: '127.0.0.1',
    url(original) {
      const u = new URL(original);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut() {
      refusing = true;
      destroyAll();
    },
    restore() {
      refusing = false;
    },
    setLatency(ms) {
      latencyMs = Math.max(0, ms);
    },
    connectionCount: () => links.size,
    close() {
      refusing = true;
      destroyAll();
      closing ??= new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      return closing;
    },
  };
}
