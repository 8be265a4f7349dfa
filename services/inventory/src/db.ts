import type { CancellationReason, InventoryFailureReason, MessagingTables, OrderLine } from '@checkout-saga/shared';
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { ReservationStatus } from './domain/reservation.ts';

/** The tables of the inventory database, mirroring database/migrations/inventory exactly. */
export interface ProductsTable {
  sku: string;
  name: string;
  price_minor: number;
  stock: number;
  updated_at: Generated<Date>;
}

export interface ReservationsTable {
  order_id: string;
  saga_id: string;
  /** Set when stock was held (RESERVED, then COMMITTED or RELEASED); null otherwise. */
  reservation_id: string | null;
  status: ReservationStatus;
  /** FAILED: why the reservation failed; RELEASED or CANCELLED_BEFORE_RESERVE: why the order was cancelled. */
  reason: InventoryFailureReason | CancellationReason | null;
  /** The order lines as received; written as JSON text. */
  items: ColumnType<OrderLine[], string, string>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface InventoryTables extends MessagingTables {
  products: ProductsTable;
  reservations: ReservationsTable;
}

export type Product = Selectable<ProductsTable>;
export type Reservation = Selectable<ReservationsTable>;
export type NewReservation = Insertable<ReservationsTable>;
