import { sql } from 'kysely';
import type { System } from './system.ts';

export type Stock = Map<string, number>;

/** The three service databases: a whole System, or plain handles (the fault suite opens its own). */
export type InvariantDatabases = Pick<System, 'orderDb' | 'paymentDb' | 'inventoryDb'>;

export async function stockLevels(system: Pick<System, 'inventoryDb'>): Promise<Stock> {
  const rows = await system.inventoryDb.selectFrom('products').select(['sku', 'stock']).execute();
  return new Map(rows.map((row) => [row.sku, Number(row.stock)]));
}

/**
 * The six invariants of docs/design.md, checked where the data lives: the three service
 * databases and the dead-letter queues. Returns every violation found (empty = all hold).
 */
export async function invariantViolations(system: InvariantDatabases, initialStock: Stock, orderIds?: readonly string[]): Promise<string[]> {
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

export async function unpublishedRows(system: InvariantDatabases): Promise<number> {
  let total = 0;
  for (const db of [system.orderDb, system.paymentDb, system.inventoryDb]) {
    const { rows } = await sql<{ count: number }>`select count(*)::int as count from outbox where published_at is null`.execute(db);
    total += rows[0]!.count;
  }
  return total;
}

/**
 * Invariant 6, as far as the databases can show it: no effect was applied twice. Each
 * participant emitted at most one outcome per order (one charge decision, one refund, one
 * reservation decision), the saga emitted at most one of each of its events and never both
 * OrderConfirmed and OrderCancelled, and no event entered a saga's history twice. (Stock
 * taken or given back twice shows up in invariant 4.) Relies on published outbox rows being
 * kept (OUTBOX_RETENTION_MS, a day by default).
 */
export async function duplicateEffectViolations(system: InvariantDatabases): Promise<string[]> {
  const violations: string[] = [];
  const repeated = async (db: InvariantDatabases[keyof InvariantDatabases], service: string, groups: Record<string, readonly string[]>) => {
    for (const [what, types] of Object.entries(groups)) {
      const { rows } = await sql<{ order_id: string; count: number }>`
        select envelope->>'orderId' as order_id, count(*)::int as count from outbox
        where envelope->>'type' in (${sql.join(types)})
        group by 1 having count(*) > 1`.execute(db);
      for (const row of rows) violations.push(`${service} emitted ${what} ${row.count} times for order ${row.order_id}`);
    }
  };
  await repeated(system.paymentDb, 'payment', { 'a charge decision (PaymentCompleted/PaymentFailed)': ['PaymentCompleted', 'PaymentFailed'], PaymentRefunded: ['PaymentRefunded'] });
  await repeated(system.inventoryDb, 'inventory', { 'a reservation decision (InventoryReserved/InventoryFailed)': ['InventoryReserved', 'InventoryFailed'] });
  await repeated(system.orderDb, 'order', {
    OrderCreated: ['OrderCreated'],
    PaymentRefundRequested: ['PaymentRefundRequested'],
    'an outcome (OrderConfirmed/OrderCancelled)': ['OrderConfirmed', 'OrderCancelled'],
  });
  const { rows } = await sql<{ saga_id: string; event_id: string; count: number }>`
    select saga_id, event_id, count(*)::int as count from saga_history group by 1, 2 having count(*) > 1`.execute(system.orderDb);
  for (const row of rows) violations.push(`event ${row.event_id} entered the history of saga ${row.saga_id} ${row.count} times`);
  return violations;
}
