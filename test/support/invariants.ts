import { sql } from 'kysely';
import type { System } from './system.ts';

export type Stock = Map<string, number>;

export async function stockLevels(system: Pick<System, 'inventoryDb'>): Promise<Stock> {
  const rows = await system.inventoryDb.selectFrom('products').select(['sku', 'stock']).execute();
  return new Map(rows.map((row) => [row.sku, Number(row.stock)]));
}

/**
 * The six invariants of DESIGN.md, checked where the data lives: the three service
 * databases and the dead-letter queues. Returns every violation found (empty = all hold).
 */
export async function invariantViolations(system: System, initialStock: Stock, orderIds?: readonly string[]): Promise<string[]> {
  const violations: string[] = [];
  let ordersQuery = system.orderDb.selectFrom('orders').select(['order_id', 'status', 'reason']);
  if (orderIds) ordersQuery = ordersQuery.where('order_id', 'in', orderIds.length ? [...orderIds] : ['00000000-0000-0000-0000-000000000000']);
  const orders = await ordersQuery.execute();
  const payments = new Map((await system.paymentDb.selectFrom('payments').selectAll().execute()).map((row) => [row.order_id, row]));
  const reservations = new Map((await system.inventoryDb.selectFrom('reservations').selectAll().execute()).map((row) => [row.order_id, row]));

  for (const order of orders) {
    const payment = payments.get(order.order_id);
    const reservation = reservations.get(order.order_id);
    // 1. every accepted order ends CONFIRMED or CANCELLED
    if (order.status !== 'CONFIRMED' && order.status !== 'CANCELLED') violations.push(`order ${order.order_id} is ${order.status}`);
    // 2. CONFIRMED: one charge, not refunded; stock taken once (a committed reservation)
    if (order.status === 'CONFIRMED') {
      if (payment?.status !== 'COMPLETED') violations.push(`confirmed order ${order.order_id} has payment ${payment?.status ?? 'none'}`);
      if (reservation?.status !== 'COMMITTED') violations.push(`confirmed order ${order.order_id} has reservation ${reservation?.status ?? 'none'}`);
    }
    // 3. CANCELLED: charged minus refunded is zero; nothing held
    if (order.status === 'CANCELLED') {
      if (payment?.status === 'COMPLETED') violations.push(`cancelled order ${order.order_id} (${order.reason}) was charged and not refunded`);
      if (reservation && (reservation.status === 'RESERVED' || reservation.status === 'COMMITTED')) {
        violations.push(`cancelled order ${order.order_id} (${order.reason}) still holds stock (${reservation.status})`);
      }
    }
  }

  // 4. stock never negative; initial = current + committed or held quantities
  const stock = await stockLevels(system);
  const held = new Map<string, number>();
  for (const reservation of reservations.values()) {
    if (reservation.status !== 'RESERVED' && reservation.status !== 'COMMITTED') continue;
    for (const line of reservation.items as { sku: string; qty: number }[]) held.set(line.sku, (held.get(line.sku) ?? 0) + line.qty);
  }
  for (const [sku, initial] of initialStock) {
    const now = stock.get(sku) ?? 0;
    if (now < 0) violations.push(`stock of ${sku} is negative (${now})`);
    if (initial !== now + (held.get(sku) ?? 0)) violations.push(`stock of ${sku}: initial ${initial} ≠ current ${now} + held ${held.get(sku) ?? 0}`);
  }

  // 5. nothing left in any outbox
  for (const [name, db] of [['order', system.orderDb], ['payment', system.paymentDb], ['inventory', system.inventoryDb]] as const) {
    const { rows } = await sql<{ count: number }>`select count(*)::int as count from outbox where published_at is null`.execute(db);
    if (rows[0]!.count > 0) violations.push(`${name} outbox has ${rows[0]!.count} unpublished row(s)`);
  }
  return violations;
}

/** Orders still in flight (PENDING); zero means every saga has settled. */
export async function pendingOrders(system: Pick<System, 'orderDb'>): Promise<number> {
  const { rows } = await sql<{ count: number }>`select count(*)::int as count from orders where status = 'PENDING'`.execute(system.orderDb);
  return rows[0]!.count;
}

export async function unpublishedRows(system: System): Promise<number> {
  let total = 0;
  for (const db of [system.orderDb, system.paymentDb, system.inventoryDb]) {
    const { rows } = await sql<{ count: number }>`select count(*)::int as count from outbox where published_at is null`.execute(db);
    total += rows[0]!.count;
  }
  return total;
}
