import { messagingSettings } from '@checkout-saga/shared';
import { Type, type Static, type TObject } from 'typebox';

/**
 * Every environment variable the notification service reads. It has no database: of the
 * kit's shared settings it uses the broker, HTTP, logging and retry ones.
 */
export const notificationSettings = {
  ...messagingSettings('notification', 3003),
  SMTP_URL: Type.Optional(
    Type.String({
      pattern: '^smtps?://',
      format: 'url',
      secret: true,
      description: 'an SMTP server URL such as smtp://user:password@mail.example.com:587 or smtps://…:465; unset, emails are logged instead of sent',
    }),
  ),
  MAIL_FROM: Type.String({
    default: 'checkout-saga <orders@checkout-saga.local>',
    minLength: 3,
    description: 'the From address of every email, such as "Shop <orders@example.com>"',
  }),
  SMTP_TIMEOUT_MS: Type.Integer({
    default: 10_000,
    minimum: 100,
    description: 'milliseconds to wait for the SMTP server to connect, greet or answer before the send fails and is retried, at least 100',
  }),
};

export type NotificationConfig = Static<TObject<typeof notificationSettings>>;
