import type { Logger } from '@checkout-saga/shared';
import { createTransport } from 'nodemailer';
import type { Email } from './domain/email.ts';
import type { NotificationConfig } from './settings.ts';

export interface Mailer {
  send(email: Email, log: Logger): Promise<void>;
}

/**
 * Sends through SMTP_URL with nodemailer, or, when SMTP_URL is unset, only logs each email
 * (a development setup with no mail server). A failed send throws, so the message is retried.
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
      const info = await transport.sendMail({ to: email.to, subject: email.subject, text: email.text, messageId: email.messageId });
      log.info({ to: email.to, messageId: info.messageId, response: info.response }, 'email sent');
    },
  };
}
