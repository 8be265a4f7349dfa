import type { MessagingTables, ServiceDefinition } from '@checkout-saga/shared';
import { emailOnOrderCancelled, emailOnOrderConfirmed } from './handlers/notify.ts';
import { createMailer } from './mailer.ts';
import type { NotificationConfig } from './settings.ts';

/** Emails the customer when an order is confirmed or cancelled. Stateless: no database, only health and metrics routes. */
export const notificationService: ServiceDefinition<MessagingTables, NotificationConfig> = {
  name: 'notification',
  database: false,
  handlers: ({ config }) => {
    const mailer = createMailer(config);
    return [emailOnOrderConfirmed(mailer), emailOnOrderCancelled(mailer)];
  },
};
