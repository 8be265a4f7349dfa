import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import type { BrokerAttachment, ChannelLost } from './broker.ts';

export interface OutboundMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  options: Options.Publish & { messageId: string };
}

/** `unroutable`: the broker returned the message because no queue is bound to its routing key (the broker itself is fine). */
export type PublishOutcome = { ok: true } | { ok: false; error: string; unroutable?: true };

interface Pending {
  messageId: string;
  channel: ConfirmChannel;
  settle(outcome: PublishOutcome): void;
}

const REFUSED = 'broker refused the message';

/**
 * Publishes on a ConfirmChannel with many confirms in flight and reports, per message,
 * whether the broker took responsibility for it. A message is only "ok" when confirmed and
 * not returned as unroutable (every publish is `mandatory`); a confirm that does not come
 * within the deadline, or a channel that closes first, fails it explicitly so the caller
 * can keep the row and try again.
 *
 * A nacked batch gets a new channel for the next one. On a RabbitMQ cluster (3.10 here), a
 * channel that first published to a quorum queue while the queue was electing a new leader
 * keeps being nacked for that queue long after the election, while a new channel on the same
 * connection is confirmed at once. amqplib's recovery only replaces channels with their
 * connection, so this one replacement is done here.
 */
export class ConfirmPublisher implements BrokerAttachment {
  private channel: ConfirmChannel | undefined;
  private connection: ChannelModel | undefined;
  private readonly pending = new Set<Pending>();
  private readonly returned = new Set<string>();
  private readonly readyWaiters: (() => void)[] = [];
  private channelLost: ChannelLost | undefined;

  constructor(private readonly confirmTimeoutMs: number) {}

  get isReady(): boolean {
    return this.channel !== undefined;
  }

  /** Resolves when a channel is open (immediately if one is). */
  whenReady(): Promise<void> {
    return this.channel ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  async attach(connection: ChannelModel, channelLost?: ChannelLost): Promise<void> {
    this.connection = connection;
    this.channelLost = channelLost;
    await this.open(connection);
  }

  private async open(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    let lastError: Error | undefined;
    // A basic.return always precedes the confirm of the same message, so the confirm callback can look it up.
    channel.on('return', (message) => {
      const id = message.properties.messageId as string | undefined;
      if (id) this.returned.add(id);
    });
    channel.on('error', (error: Error) => (lastError = error));
    channel.on('close', () => {
      this.failAll('channel closed before the broker confirmed', channel);
      // Closed by the broker (not replaced by renew, closed by close() or lost with the connection).
      if (this.channel === channel) {
        this.channel = undefined;
        this.channelLost?.(lastError);
      }
    });
    this.channel = channel;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  detach(): void {
    this.channel = undefined;
    this.connection = undefined;
    this.failAll('connection lost before the broker confirmed');
  }

  /** Publishes every message and resolves with one outcome per message, in order; never rejects. */
  async publishAll(messages: readonly OutboundMessage[]): Promise<PublishOutcome[]> {
    const channel = this.channel;
    if (!channel) return messages.map(() => ({ ok: false, error: 'not connected to the broker' }));

    const batch: Pending[] = [];
    const outcomes = messages.map(
      (message) =>
        new Promise<PublishOutcome>((resolve) => {
          const entry: Pending = {
            messageId: message.options.messageId,
            channel,
            settle: (outcome) => {
              if (!this.pending.delete(entry)) return;
              resolve(outcome);
            },
          };
          this.pending.add(entry);
          batch.push(entry);
          try {
            channel.publish(message.exchange, message.routingKey, message.body, { ...message.options, mandatory: true }, (error) => {
              const wasReturned = this.returned.delete(entry.messageId);
              if (error) entry.settle({ ok: false, error: `${REFUSED}: ${String(error.message ?? error)}` });
              else if (wasReturned) entry.settle({ ok: false, error: `unroutable: no queue is bound to ${message.routingKey}`, unroutable: true });
              else entry.settle({ ok: true });
            });
          } catch (error) {
            entry.settle({ ok: false, error: `publish failed: ${(error as Error).message}` });
          }
        }),
    );
    const deadline = setTimeout(() => {
      for (const entry of batch) entry.settle({ ok: false, error: `no confirm within ${this.confirmTimeoutMs} ms` });
    }, this.confirmTimeoutMs);
    let settled: PublishOutcome[];
    try {
      settled = await Promise.all(outcomes);
    } finally {
      clearTimeout(deadline);
    }
    if (settled.some((outcome) => !outcome.ok && outcome.error.startsWith(REFUSED))) await this.renew(channel);
    return settled;
  }

  /** Replaces a channel the broker nacked on (see the class comment); the old one closes once its confirms are in. */
  private async renew(nacked: ConfirmChannel): Promise<void> {
    const connection = this.connection;
    if (this.channel !== nacked || !connection) return; // already replaced, or the connection is gone (recovery opens a new one)
    try {
      await this.open(connection);
    } catch {
      return; // the connection is going down: its recovery attaches a new channel
    }
    void nacked.waitForConfirms().catch(() => {}).finally(() => void nacked.close().catch(() => {}));
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => {});
    this.failAll('publisher closed');
  }

  /** Fails what waits for a confirm: on `channel` only, or on every channel. */
  private failAll(error: string, channel?: ConfirmChannel): void {
    for (const entry of [...this.pending]) if (!channel || entry.channel === channel) entry.settle({ ok: false, error });
  }
}
