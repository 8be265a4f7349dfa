import amqp from 'amqplib';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { Type } from 'typebox';
import { loadConfig, routingKeyOf, startService, type Envelope, type RunningService } from '@checkout-saga/shared';
import { deleteBrokerObjects, testNames, testServers } from '@checkout-saga/shared/testing';
import { notificationService, notificationSettings } from '../src/index.ts';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw header block, folded lines unfolded. */
  headers: string;
  subject: string;
  messageId: string;
  body: string;
}

/** A real SMTP server on a free port of 127.0.0.1 that keeps what it receives; `rejectNext` makes it refuse the next n messages (451). */
export interface SmtpSink {
  url: string;
  received: ReceivedMail[];
  rejectNext(count: number): void;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  let rejections = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (rejections > 0) {
          rejections--;
          return callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const split = raw.search(/\r?\n\r?\n/);
        const headers = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
        const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(headers)?.[1]?.trim() ?? '';
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((address) => address.address),
          headers,
          subject: header('Subject'),
          messageId: header('Message-ID'),
          body: raw.slice(split).trim().replace(/\r\n/g, '\n'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    rejectNext: (count) => {
      rejections = count;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A notification service on broker names of its own, and a way to publish events to it. */
export interface NotificationHarness {
  service: RunningService;
  publish(...events: Envelope[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startNotification(label: string, env: Record<string, string>): Promise<NotificationHarness> {
  const servers = await testServers();
  const names = testNames(`notification-${label}`);
  const config = loadConfig(Type.Object(notificationSettings), {
    RABBITMQ_URL: servers.amqpUrl,
    ORDER_EXCHANGE: names.exchange,
    QUEUE_PREFIX: names.queuePrefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RETRY_BASE_DELAY_MS: '100',
    ...env,
  });
  const service = await startService(notificationService, config);
  const connection = await amqp.connect(servers.amqpUrl);
  const channel = await connection.createConfirmChannel();
  return {
    service,
    async publish(...events) {
      for (const event of events) {
        channel.publish(names.exchange, routingKeyOf(event.type), Buffer.from(JSON.stringify(event)), {
          messageId: event.eventId,
          type: event.type,
          correlationId: event.sagaId,
          contentType: 'application/json',
          persistent: true,
        });
      }
      await channel.waitForConfirms();
    },
    async stop() {
      await service.stop();
      await connection.close().catch(() => {});
      const topology = service.topology;
      await deleteBrokerObjects(servers.amqpUrl, {
        exchanges: [names.exchange],
        queues: topology ? [topology.queue, topology.deadLetterQueue, ...topology.retryQueues.map((retry) => retry.name)] : [],
      });
    },
  };
}
