import type { CancellationReason, Currency, MessagingTables, OrderLine } from '@checkout-saga/shared';
import type { ColumnType, Generated } from 'kysely';
import type { SagaState } from './saga/decide.ts';

/*
 * The order service's tables, as created by database/migrations/order. Column names and
 * types mirror the migration exactly. bigint columns come back as numbers (the kit's pg
 * type parser): every amount we store fits in 2^53.
 */

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'CANCELLED';

export interface OrdersTable {
  order_id: string;
  saga_id: string;
  customer_id: string | null;
  customer_email: string;
  /** jsonb: written as a JSON string, read back parsed. */
  items: ColumnType<OrderLine[], string, string>;
  amount_minor: number;
  currency: Currency;
  status: OrderStatus;
  reason: CancellationReason | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface SagasTable {
  saga_id: string;
  order_id: string;
  state: SagaState;
  reason: CancellationReason | null;
  timeout_at: Date;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface SagaHistoryTable {
  id: Generated<number>;
  saga_id: string;
  event_id: string;
  /** The event type consumed or emitted, or SagaTimedOut for a timeout. */
  type: string;
  from_state: SagaState | null;
  to_state: SagaState;
  compensation: Generated<boolean>;
  at: Generated<Date>;
}

export interface IdempotencyKeysTable {
  key: string;
  request_hash: string;
  status_code: number;
  /** json (kept as written): the first response's body. */
  response: ColumnType<unknown, string, string>;
  order_id: string;
  created_at: Generated<Date>;
}

export interface OrderTables extends MessagingTables {
  orders: OrdersTable;
  sagas: SagasTable;
  saga_history: SagaHistoryTable;
  idempotency_keys: IdempotencyKeysTable;
}
