import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** The envelope sender (MAIL FROM), '' for none. */
  from: string;
  /** The envelope recipients (RCPT TO). */
  to: string[];
  /** The raw header block, folded lines unfolded. */
  headers: string;
  subject: string;
  messageId: string;
  /** The message body, line endings as \n. */
  body: string;
}

/** A real SMTP server on a free port of 127.0.0.1 that keeps what it receives; `rejectNext` makes it refuse the next n messages (451 unless told). */
export interface SmtpSink {
  url: string;
  received: ReceivedMail[];
  rejectNext(count: number, responseCode?: number): void;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  let rejections = 0;
  let rejectionCode = 451;
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
          return callback(Object.assign(new Error(`refused by the test sink (${rejectionCode})`), { responseCode: rejectionCode }));
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
  // smtp-server emits a connection's socket errors on the server; a client that hangs up is no failure of the sink.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    rejectNext: (count, responseCode = 451) => {
      rejections = count;
      rejectionCode = responseCode;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
