import { sql, type QueryCreator, type Transaction } from 'kysely';
import type { NewReservation, Reservation, InventoryTables } from './db.ts';
import type { ReservationStatus } from './domain/reservation.ts';

/*
 * Locking rules, which together keep stock exact and deadlock-free under any concurrency
 * and any number of inventory instances:
 * - every event of one order serialises on the order's reservations row: an existing row is
 *   locked FOR UPDATE, or by an UPDATE that re-checks its status once it holds the row; a
 *   missing one is claimed by inserting it (a concurrent insert of the same order blocks on
 *   the primary key until the first transaction ends, then finds it);
 * - product rows are locked FOR UPDATE before their stock is read or changed, always in SKU
 *   order (byte order, the "C" collation, which is also how JavaScript compares ASCII SKUs);
 * - a transaction that holds product rows never waits for a reservations row lock: the
 *   reservation locks the products and then claims the order's row by inserting it, and
 *   when that insert finds a row it leaves it alone (releases lock the row, then products).
 */

type Trx = Transaction<InventoryTables>;

/** The order's reservation record, locked until the transaction ends; undefined when it has none. */
export function lockReservation(trx: Trx, orderId: string): Promise<Reservation | undefined> {
  return trx.selectFrom('reservations').selectAll().where('order_id', '=', orderId).forUpdate().executeTakeFirst();
}

/** Inserts `row` unless the order already has a reservation record; true when it was inserted. */
export async function insertIfAbsent(trx: Trx, row: NewReservation): Promise<boolean> {
  const result = await trx
    .insertInto('reservations')
    .values(row)
    .onConflict((conflict) => conflict.column('order_id').doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** Inserts `row` if the order has no record yet (returns undefined), else returns the existing one, locked. */
export async function insertOrLock(trx: Trx, row: NewReservation): Promise<Reservation | undefined> {
  if (await insertIfAbsent(trx, row)) return undefined;
  const existing = await lockReservation(trx, row.order_id);
  if (!existing) throw new Error(`reservation of order ${row.order_id} conflicted on insert but cannot be found`);
  return existing;
}

export async function setReservationStatus(trx: Trx, orderId: string, status: ReservationStatus, reason?: string): Promise<void> {
  await trx
    .updateTable('reservations')
    .set({ status, ...(reason === undefined ? {} : { reason: reason as Reservation['reason'] }), updated_at: sql<Date>`now()` })
    .where('order_id', '=', orderId)
    .execute();
}

/**
 * RESERVED → COMMITTED in one statement, instead of locking the row and then updating it: the
 * update waits for a transaction that holds the row and then re-checks the status, and a record
 * in any other status never changes again. The committed record, or undefined when none was held.
 */
export async function commitIfReserved(trx: Trx, orderId: string): Promise<Pick<Reservation, 'reservation_id'> | undefined> {
  return trx
    .updateTable('reservations')
    .set({ status: 'COMMITTED', updated_at: sql<Date>`now()` })
    .where('order_id', '=', orderId)
    .where('status', '=', 'RESERVED')
    .returning('reservation_id')
    .executeTakeFirst();
}

/** Locks the named products in SKU order and returns the stock of those that exist. */
export async function lockStock(trx: Trx, skus: readonly string[]): Promise<Map<string, number>> {
  if (skus.length === 0) return new Map();
  const rows = await trx
    .selectFrom('products')
    .select(['sku', 'stock'])
    // One array parameter, not an IN list: the same text for any number of SKUs, so it is prepared once.
    .where('sku', '=', (eb) => eb.fn.any(eb.val([...skus])))
    .orderBy(sql`sku collate "C"`)
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.sku, row.stock]));
}

/** One row (sku, delta) per product of a stock change, so that one UPDATE changes them all; SKUs and deltas come as two arrays. */
function stockChange(db: QueryCreator<InventoryTables>, skus: readonly string[], deltas: readonly number[]) {
  return db.selectNoFrom([sql<string>`unnest(${skus}::text[])`.as('sku'), sql<number>`unnest(${deltas}::integer[])`.as('delta')]);
}

function stockArrays(quantities: readonly [sku: string, qty: number][], sign: 1 | -1) {
  return { skus: quantities.map(([sku]) => sku), deltas: quantities.map(([, qty]) => sign * qty) };
}

/** Adds `sign * qty` to each product's stock; the caller holds the product locks (lockStock). */
export async function adjustStock(trx: Trx, quantities: readonly [sku: string, qty: number][], sign: 1 | -1): Promise<void> {
  const { skus, deltas } = stockArrays(quantities, sign);
  await trx
    .with('change', (db) => stockChange(db, skus, deltas))
    .updateTable('products')
    .from('change')
    .set((eb) => ({ stock: eb('products.stock', '+', eb.ref('change.delta')), updated_at: sql<Date>`now()` }))
    .whereRef('products.sku', '=', 'change.sku')
    .execute();
}

/**
 * Inserts a RESERVED record and takes its stock, in one statement, unless the order already
 * has a record: then neither happens, because the stock update joins the insert's RETURNING.
 * True when it was inserted. The caller holds the product locks (lockStock).
 */
export async function insertHoldingStock(trx: Trx, row: NewReservation, quantities: readonly [sku: string, qty: number][]): Promise<boolean> {
  const { skus, deltas } = stockArrays(quantities, -1);
  const rows = await trx
    .with('change', (qc) => stockChange(qc, skus, deltas))
    .with('inserted', (qc) =>
      qc
        .insertInto('reservations')
        .values(row)
        .onConflict((conflict) => conflict.column('order_id').doNothing())
        .returning('order_id'),
    )
    .with('taken', (qc) =>
      qc
        .updateTable('products')
        .from(['change', 'inserted'])
        .set((eb) => ({ stock: eb('products.stock', '+', eb.ref('change.delta')), updated_at: sql<Date>`now()` }))
        .whereRef('products.sku', '=', 'change.sku'),
    )
    .selectFrom('inserted')
    .select('order_id')
    .execute();
  return rows.length > 0;
}
