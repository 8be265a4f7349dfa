import type { Channel, ChannelModel } from 'amqplib';
import type { BrokerAttachment, ChannelLost } from './broker.ts';

/**
 * Reads how many messages wait in one queue (a passive declare), on a channel of its own so a
 * failed check never closes a channel that publishes or consumes. amqplib has no call that
 * reads a depth without a channel; the management API would need another port and credentials.
 */
export class QueueDepth implements BrokerAttachment {
  private channel: Channel | undefined;

  constructor(private readonly queue: string) {}

  async attach(connection: ChannelModel, channelLost?: ChannelLost): Promise<void> {
    const channel = await connection.createChannel();
    let lastError: Error | undefined;
    channel.on('error', (error: Error) => (lastError = error));
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      channelLost?.(lastError);
    });
    this.channel = channel;
  }

  detach(): void {
    this.channel = undefined;
  }

  /** The messages ready in the queue now; undefined while not connected. */
  async messages(): Promise<number | undefined> {
    const channel = this.channel;
    if (!channel) return undefined;
    return (await channel.checkQueue(this.queue)).messageCount;
  }
}
