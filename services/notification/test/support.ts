import { startTestService, type ServiceHarness } from '@checkout-saga/shared/testing';
import { notificationService, notificationSettings } from '../src/index.ts';

export { startSmtpSink, type SmtpSink } from '@checkout-saga/shared/testing';
export type NotificationHarness = ServiceHarness;

/** A notification service (no database) on broker names of its own (see `startTestService`). */
export const startNotification = (label: string, env: Record<string, string>) => startTestService(notificationService, notificationSettings, { label, env });
