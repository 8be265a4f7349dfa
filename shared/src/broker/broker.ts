import amqp, { type ChannelModel, type RecoveringChannelModel } from 'amqplib';
import { coalesceWrites } from './coalesce-writes.ts';
import type { Logger } from '../logger.ts';

/** Something that lives on a broker connection and must be rebuilt on every new one (a consumer, a publisher channel). */
export interface BrokerAttachment {
  attach(connection: ChannelModel): Promise<void>;
  detach?(): void;
}

/**
 * One recovering AMQP connection per process (amqplib's own recovery). On every
 * (re)connect it declares the topology and re-attaches every consumer and publisher,
 * so nothing above this layer writes a reconnect loop.
 */
export class Broker {
  private connection: ChannelModel | undefined;
  private readonly attachments: BrokerAttachment[] = [];
  private readonly attachedTo = new WeakMap<ChannelModel, Set<BrokerAttachment>>();
  private recovering!: RecoveringChannelModel;
  /** A broker answer no reconnect can change (a queue declared with other arguments): startup fails with it. */
  private fatal: Error | undefined;

  private constructor(
    private readonly declareTopology: (connection: ChannelModel) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  static async connect(url: string, options: { logger: Logger; topology: (connection: ChannelModel) => Promise<void>; initialMaxRetries?: number }): Promise<Broker> {
    const broker = new Broker(options.topology, options.logger);
    broker.recovering = await amqp.connect(url, {
      noDelay: true, // Nagle would hold small publishes and confirms back by up to 40 ms
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
    broker.recovering.on('disconnect', (error: Error) => {
      broker.connection = undefined;
      for (const attachment of broker.attachments) attachment.detach?.();
      broker.logger.warn({ err: error.message }, 'broker connection lost; recovering');
    });
    broker.recovering.on('reconnect-scheduled', ({ attempt, delay, error }) =>
      broker.logger.warn({ attempt, delay, err: error.message }, 'broker reconnect scheduled'),
    );
    broker.recovering.on('connect', () => broker.logger.info('broker connected'));
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
    await attachment.attach(connection);
  }
}
