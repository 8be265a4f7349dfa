import { sql, type Transaction } from 'kysely';
import type { NewPayment, Payment, PaymentTables } from './db.ts';

/*
 * Every event of one order serialises on the order's payments row, across transactions and
 * payment instances. A row that exists is locked FOR UPDATE. A row that does not exist yet
 * is claimed by inserting it: a concurrent insert of the same order blocks on the primary
 * key until the first transaction ends, then finds the row and locks it.
 */

type Trx = Transaction<PaymentTables>;

/** The order's payment, locked until the transaction ends; undefined when it has none. */
export function lockPayment(trx: Trx, orderId: string): Promise<Payment | undefined> {
  return trx.selectFrom('payments').selectAll().where('order_id', '=', orderId).forUpdate().executeTakeFirst();
}

/** Inserts `row` unless the order already has a payment; true when it was inserted. */
export async function insertIfAbsent(trx: Trx, row: NewPayment): Promise<boolean> {
  const result = await trx
    .insertInto('payments')
    .values(row)
    .onConflict((conflict) => conflict.column('order_id').doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** Inserts `row` if the order has no payment yet (returns undefined), else returns the existing one, locked. */
export async function insertOrLock(trx: Trx, row: NewPayment): Promise<Payment | undefined> {
  if (await insertIfAbsent(trx, row)) return undefined;
  const existing = await lockPayment(trx, row.order_id);
  if (!existing) throw new Error(`payment of order ${row.order_id} conflicted on insert but cannot be found`);
  return existing;
}

export async function markRefunded(trx: Trx, orderId: string): Promise<void> {
  await trx
    .updateTable('payments')
    .set({ status: 'REFUNDED', refunded_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
    .where('order_id', '=', orderId)
    .execute();
}
