import type { Currency, MessagingTables } from '@checkout-saga/shared';
import type { Generated, Insertable, Selectable } from 'kysely';
import type { PaymentFailureReason, PaymentStatus } from './domain/payment.ts';

/** The tables of the payment database, mirroring database/migrations/payment exactly. */
export interface PaymentsTable {
  order_id: string;
  saga_id: string;
  /** Null only for SKIPPED: no charge was ever attempted. */
  payment_id: string | null;
  status: PaymentStatus;
  amount_minor: number;
  currency: Currency;
  /** Set exactly when status is FAILED. */
  failure_reason: PaymentFailureReason | null;
  created_at: Generated<Date>;
  /** Set exactly when status is REFUNDED. */
  refunded_at: Date | null;
  updated_at: Generated<Date>;
}

export interface PaymentTables extends MessagingTables {
  payments: PaymentsTable;
}

export type Payment = Selectable<PaymentsTable>;
export type NewPayment = Insertable<PaymentsTable>;
