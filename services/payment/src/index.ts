export { paymentService } from './service.ts';
export { paymentSettings, type PaymentConfig } from './settings.ts';
export type { NewPayment, Payment, PaymentTables, PaymentsTable } from './db.ts';
export type { PaymentFailureReason, PaymentStatus } from './domain/payment.ts';
