/*
 * An SMTP server for the notification service that keeps the Message-ID of every message it
 * accepts, and accepts every message except those to
 * the recipients a scenario marks as poison, which it refuses permanently (550) at RCPT TO:
 * a handler failure that no retry can fix, produced without touching the service's code.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface SelectiveSmtp {
  url: string;
  /** Messages accepted so far. */
  accepted(): number;
  /** The Message-ID header of each message accepted so far, in arrival order (a copy sent twice shows twice). */
  messageIds(): string[];
  /** Recipients refused so far (one per attempt). */
  refused(): string[];
  /** SMTP connections open now: 0 once a cut link's connections have closed, so no send can still complete. */
  openConnections(): number;
  close(): Promise<void>;
}

export async function startSelectiveSmtp(isPoison: (recipient: string) => boolean): Promise<SelectiveSmtp> {
  let accepted = 0;
  const messageIds: string[] = [];
  const refused: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (!isPoison(address.address)) return callback();
      refused.push(address.address);
      callback(Object.assign(new Error(`mailbox ${address.address} refuses all mail (fault test)`), { responseCode: 550 }));
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        accepted++;
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = raw.slice(0, Math.max(0, raw.search(/\r?\n\r?\n/))).replace(/\r?\n[ \t]+/g, ' ');
        messageIds.push(/^Message-ID:[ \t]*(.*)$/im.exec(headers)?.[1]?.trim() ?? '');
        callback();
      });
    },
  });
  // smtp-server emits a connection's socket errors on the server: a link a scenario cuts (EPIPE,
  // ECONNRESET) is expected there, and without a listener it would be an uncaught error that fails the run.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted: () => accepted,
    messageIds: () => [...messageIds],
    refused: () => [...refused],
    openConnections: () => server.connections.size,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
