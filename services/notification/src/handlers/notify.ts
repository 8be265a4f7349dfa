import { on } from '@checkout-saga/shared';
import type { MessagingTables } from '@checkout-saga/shared';
import { composeEmail } from '../domain/email.ts';
import type { Mailer } from '../mailer.ts';

/*
 * No database, so no inbox: a redelivered event sends its email again, with the same
 * Message-ID (derived from the event id) so the duplicate is recognisable downstream.
 */

export const emailOnOrderConfirmed = (mailer: Mailer) =>
  on<MessagingTables, 'OrderConfirmed'>('OrderConfirmed', 'notification.confirmed', ({ event, log }) => mailer.send(composeEmail(event), log), {
    transactional: false,
  });

export const emailOnOrderCancelled = (mailer: Mailer) =>
  on<MessagingTables, 'OrderCancelled'>('OrderCancelled', 'notification.cancelled', ({ event, log }) => mailer.send(composeEmail(event), log), {
    transactional: false,
  });
