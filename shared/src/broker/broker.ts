import amqp, { type ChannelModel, type Options, type RecoveringChannelModel } from 'amqplib';
import { coalesceWrites } from './coalesce-writes.ts';
import type { Logger } from '../logger.ts';

/**
 * Something that lives on a broker connection and must be rebuilt on every new one (a consumer, a publisher channel).
 * When the broker closes its channel while the connection lives on, it calls `channelLost` with the channel's
 * error, and the broker attaches it again (see Broker.reattach).
 */
export interface BrokerAttachment {
  attach(connection: ChannelModel, channelLost?: ChannelLost): Promise<void>;
  detach?(): void;
}

/** Told by an attachment that the broker closed its channel (the channel's last error, if it had one). */
export type ChannelLost = (error: Error | undefined) => void;

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The nodes of one cluster a connection may use, in the mutable object form of an amqplib URL.
 * amqplib's recovery takes one URL, not a list or a provider, but it reads that URL again on
 * every attempt: moving this object to the next node whenever a connection is lost or an
 * attempt fails gives failover and keeps amqplib's backoff, setup and events. Choosing the node
 * is the only hand-made part.
 */
class ClusterNodes {
  private readonly nodes: Options.Connect[];
  private index = 0;
  readonly current: Options.Connect;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new Error('Broker.connect: no broker address');
    this.nodes = urls.map(connectOptions);
    this.current = { ...this.nodes[0]! };
  }

  /** After a lost connection or a failed attempt: the next attempt goes to the next node, round the list. */
  next(): void {
    if (this.nodes.length < 2) return;
    this.index = (this.index + 1) % this.nodes.length;
    Object.assign(this.current, this.nodes[this.index]);
  }

  /** host:port of the node in use, for logs (never the credentials). */
  get name(): string {
    return `${this.current.hostname}:${this.current.port ?? (this.current.protocol === 'amqps' ? 5671 : 5672)}`;
  }
}

/**
 * An AMQP URL as amqplib's object form, read the way amqplib reads the string form (the same
 * query parameters; user and password unescaped here, the vhost by amqplib). Every key is
 * present, so assigning one node over another leaves nothing of the first behind.
 */
function connectOptions(url: string): Options.Connect {
  const parsed = new URL(url);
  const query = parsed.searchParams;
  const number = (name: string) => (query.has(name) ? Number.parseInt(query.get(name)!, 10) : undefined);
  const hasCredentials = parsed.username !== '' || parsed.password !== '';
  return {
    protocol: parsed.protocol.replace(/:$/, ''),
    hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : undefined,
    username: hasCredentials ? decodeURIComponent(parsed.username) : undefined,
    password: hasCredentials ? decodeURIComponent(parsed.password) : undefined,
    vhost: parsed.pathname.length > 1 ? parsed.pathname.slice(1) : undefined,
    locale: query.get('locale') ?? undefined,
    frameMax: number('frameMax'),
    maxFrameSize: number('maxFrameSize'),
    heartbeat: number('heartbeat'),
    channelMax: number('channelMax'),
  };
}

/**
 * One recovering AMQP connection per process (amqplib's own recovery). On every
 * (re)connect it declares the topology and re-attaches every consumer and publisher,
 * so nothing above this layer writes a reconnect loop. Given several nodes of a cluster,
 * it connects to the first that answers and, on losing it, tries the next at once.
 */
export class Broker {
  private connection: ChannelModel | undefined;
  private readonly attachments: BrokerAttachment[] = [];
  private readonly attachedTo = new WeakMap<ChannelModel, Set<BrokerAttachment>>();
  /** Parts being attached again after the broker closed their channel: one loop each. */
  private readonly reattaching = new Set<BrokerAttachment>();
  private recovering!: RecoveringChannelModel;
  /** A broker answer no reconnect can change (a queue declared with other arguments): startup fails with it. */
  private fatal: Error | undefined;

  private constructor(
    private readonly declareTopology: (connection: ChannelModel) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  static async connect(
    urls: string | readonly string[],
    options: { logger: Logger; topology: (connection: ChannelModel) => Promise<void>; initialMaxRetries?: number },
  ): Promise<Broker> {
    const broker = new Broker(options.topology, options.logger);
    const nodes = new ClusterNodes(typeof urls === 'string' ? [urls] : urls);
    broker.recovering = await amqp.connect(nodes.current, {
      noDelay: true, // Nagle would hold small publishes and confirms back by up to 40 ms
      // A node that is gone without a word (a hung host, a dropped route) never refuses: without a deadline on connecting
      // (idle time until the connection is open; amqplib clears it then) the attempt would hang and no other node be tried.
      // RabbitMQ gives a client the same 10 s to finish the handshake.
      timeout: CONNECT_TIMEOUT_MS,
      clientProperties: { connection_name: options.logger.bindings().service as string },
      recovery: {
        initialDelay: 100,
        maxDelay: 5000,
        initialMaxRetries: options.initialMaxRetries ?? 20,
        maxRetries: Infinity,
        waitForConnect: false,
        setup: (connection: ChannelModel) => broker.setup(connection),
      },
    });
    // Both are emitted before amqplib schedules the next attempt, so that attempt already goes to the next node.
    broker.recovering.on('disconnect', (error: Error) => {
      broker.connection = undefined;
      for (const attachment of broker.attachments) attachment.detach?.();
      broker.logger.warn({ node: nodes.name, err: error.message }, 'broker connection lost; recovering');
      nodes.next();
    });
    broker.recovering.on('connect-failed', () => nodes.next());
    broker.recovering.on('reconnect-scheduled', ({ attempt, delay, error }) =>
      broker.logger.warn({ attempt, delay, node: nodes.name, err: error.message }, 'broker reconnect scheduled'),
    );
    broker.recovering.on('connect', () => broker.logger.info({ node: nodes.name }, 'broker connected'));
    broker.recovering.on('error', (error: Error) => broker.logger.warn({ err: error.message }, 'broker connection error'));
    try {
      await broker.recovering.waitForConnect();
    } catch (error) {
      throw broker.fatal ?? error;
    }
    return broker;
  }

  get isConnected(): boolean {
    return this.connection !== undefined;
  }

  /** Adds a part that lives on the connection; it is attached now if connected, and after every reconnect. */
  async add(attachment: BrokerAttachment): Promise<void> {
    this.attachments.push(attachment);
    if (this.connection) await this.attachOnce(this.connection, attachment);
  }

  remove(attachment: BrokerAttachment): void {
    const index = this.attachments.indexOf(attachment);
    if (index >= 0) this.attachments.splice(index, 1);
  }

  /** A plain channel on the current connection, for one-off work (tools, tests). */
  async channel() {
    return this.recovering.createChannel();
  }

  async close(): Promise<void> {
    this.connection = undefined;
    await this.recovering.close();
  }

  private async setup(connection: ChannelModel): Promise<void> {
    coalesceWrites(connection);
    try {
      await this.declareTopology(connection);
    } catch (error) {
      if ((error as { code?: number }).code === 406) {
        this.fatal = new Error(
          `the broker refused the topology (${(error as Error).message}); a queue exists with other arguments: delete it or change QUEUE_PREFIX`,
        );
        void this.recovering.close();
      }
      throw error;
    }
    this.connection = connection;
    // By index: a part added while this loop runs is attached too.
    for (let index = 0; index < this.attachments.length; index++) {
      await this.attachOnce(connection, this.attachments[index]!);
    }
  }

  private async attachOnce(connection: ChannelModel, attachment: BrokerAttachment): Promise<void> {
    let attached = this.attachedTo.get(connection);
    if (!attached) this.attachedTo.set(connection, (attached = new Set()));
    if (attached.has(attachment)) return;
    attached.add(attachment);
    await attachment.attach(connection, (error) => void this.reattach(connection, attachment, error));
  }

  /**
   * The broker closed a part's channel while the connection lives on: a channel error, such as a
   * publish to an exchange deleted under the service, or a check of a deleted queue. amqplib's
   * recovery covers a lost connection only, and nothing else would open the channel again, so
   * the part would stay dead while the service looks healthy. Declares the topology again (what
   * was deleted comes back) and attaches the part anew, with a growing delay, until it holds or
   * the connection is replaced (a new connection attaches every part anyway).
   */
  private async reattach(connection: ChannelModel, attachment: BrokerAttachment, error: Error | undefined): Promise<void> {
    if (this.reattaching.has(attachment)) return;
    this.reattaching.add(attachment);
    let reported = false;
    try {
      for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 5000)) {
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        // Channels also close when their connection is lost: then the recovery attaches every part, and this is no news.
        if (this.connection !== connection || !this.attachments.includes(attachment)) return;
        if (!reported) this.logger.error({ err: error?.message }, 'the broker closed a channel; declaring the topology and opening it again');
        reported = true;
        try {
          await this.declareTopology(connection);
          await attachment.attach(connection, (next) => void this.reattach(connection, attachment, next));
          this.logger.warn('broker channel opened again');
          return;
        } catch (failure) {
          this.logger.error({ err: (failure as Error).message, retryInMs: Math.min(delayMs * 2, 5000) }, 'could not open the channel again; retrying');
        }
      }
    } finally {
      this.reattaching.delete(attachment);
    }
  }
}
