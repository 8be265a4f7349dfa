import { InfrastructureFailure, type Logger } from '@checkout-saga/shared';
import { createTransport } from 'nodemailer';
import type { Email } from './domain/email.ts';
import type { NotificationConfig } from './settings.ts';

export interface Mailer {
  send(email: Email, log: Logger): Promise<void>;
}

/**
 * Sends through SMTP_URL with nodemailer, or, when SMTP_URL is unset, only logs each email
 * (a development setup with no mail server). A failed send throws, so the message is retried:
 * an unreachable server as an outage (no attempt spent, see smtpOutage), a refusal as a
 * failure of this message.
 */
export function createMailer(config: Pick<NotificationConfig, 'SMTP_URL' | 'MAIL_FROM' | 'SMTP_TIMEOUT_MS'>): Mailer {
  if (!config.SMTP_URL) {
    return {
      async send(email, log) {
        log.info({ email: { from: config.MAIL_FROM, ...email } }, 'email logged, not sent (SMTP_URL is unset)');
      },
    };
  }
  const transport = createTransport(
    {
      url: config.SMTP_URL,
      connectionTimeout: config.SMTP_TIMEOUT_MS,
      greetingTimeout: config.SMTP_TIMEOUT_MS,
      socketTimeout: config.SMTP_TIMEOUT_MS,
    },
    { from: config.MAIL_FROM },
  );
  return {
    async send(email, log) {
      const info = await transport.sendMail({ to: email.to, subject: email.subject, text: email.text, messageId: email.messageId }).catch((error: unknown) => {
        if (smtpOutage(error)) throw new InfrastructureFailure(`SMTP server unreachable (${(error as SmtpError).code ?? (error as SmtpError).responseCode}): ${(error as Error).message}`, { cause: error });
        throw error;
      });
      log.info({ to: email.to, messageId: info.messageId, response: info.response }, 'email sent');
    },
  };
}

type SmtpError = { code?: string; responseCode?: number };

/**
 * Whether a nodemailer error says the mail server could not be reached or went away, rather
 * than that it answered about this message: by nodemailer's codes (ECONNECTION, ESOCKET such
 * as "connect ECONNREFUSED", ETIMEDOUT, EDNS) and the SMTP reply 421, "service not available",
 * which is about the server, not the message. Written here because nodemailer's own
 * isTransientError (the same codes and 421, without EDNS) is not in its package exports.
 * Every other reply spends an attempt: 5xx is a refusal for good, and a 4xx other than 421
 * (450 mailbox busy, 451 local error, 452 no storage) is the server's answer about this
 * message, so it backs off along the retry schedule and is dead-lettered, replayable, if it
 * never clears, instead of circling forever at the first delay.
 */
export function smtpOutage(error: unknown): boolean {
  const { code, responseCode } = (error ?? {}) as SmtpError;
  if (responseCode !== undefined) return responseCode === 421;
  return code === 'ECONNECTION' || code === 'ESOCKET' || code === 'ETIMEDOUT' || code === 'EDNS';
}
