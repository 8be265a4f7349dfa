import { startTestService, type ServiceHarness, type ServiceHarnessOptions } from '@checkout-saga/shared/testing';
import { paymentService, paymentSettings, type PaymentTables } from '../src/index.ts';

export { applied, duplicates, emitted } from '@checkout-saga/shared/testing';
export type PaymentHarness = ServiceHarness<PaymentTables>;

/** Payment instances on a database and broker names of their own (see `startTestService`). */
export const startPayment = (label: string, options: Omit<ServiceHarnessOptions, 'label'> = {}) => startTestService(paymentService, paymentSettings, { ...options, label });
