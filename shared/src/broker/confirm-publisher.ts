import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import type { BrokerAttachment } from './broker.ts';

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
  settle(outcome: PublishOutcome): void;
}

/**
 * Publishes on a ConfirmChannel with many confirms in flight and reports, per message,
 * whether the broker took responsibility for it. A message is only "ok" when confirmed and
 * not returned as unroutable (every publish is `mandatory`); a confirm that does not come
 * within the deadline, or a channel that closes first, fails it explicitly so the caller
 * can keep the row and try again.
 */
export class ConfirmPublisher implements BrokerAttachment {
  private channel: ConfirmChannel | undefined;
  private readonly pending = new Set<Pending>();
  private readonly returned = new Set<string>();
  private readonly readyWaiters: (() => void)[] = [];

  constructor(private readonly confirmTimeoutMs: number) {}

  get isReady(): boolean {
    return this.channel !== undefined;
  }

  /** Resolves when a channel is open (immediately if one is). */
  whenReady(): Promise<void> {
    return this.channel ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  async attach(connection: ChannelModel): Promise<void> {
    const channel = await connection.createConfirmChannel();
    // A basic.return always precedes the confirm of the same message, so the confirm callback can look it up.
    channel.on('return', (message) => {
      const id = message.properties.messageId as string | undefined;
      if (id) this.returned.add(id);
    });
    channel.on('error', () => {});
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
      this.failAll('channel closed before the broker confirmed');
    });
    this.channel = channel;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  detach(): void {
    this.channel = undefined;
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
              if (error) entry.settle({ ok: false, error: `broker refused the message: ${String(error.message ?? error)}` });
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
    try {
      return await Promise.all(outcomes);
    } finally {
      clearTimeout(deadline);
    }
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => {});
    this.failAll('publisher closed');
  }

  private failAll(error: string): void {
    for (const entry of [...this.pending]) entry.settle({ ok: false, error });
  }
}
