import type { InventoryFailureReason, OrderLine } from '@checkout-saga/shared';

/*
 * The inventory decisions, free of I/O. The handlers lock the rows involved, ask these
 * functions what to do, and write the answer.
 */

export type ReservationStatus = 'RESERVED' | 'COMMITTED' | 'RELEASED' | 'CANCELLED_BEFORE_RESERVE' | 'FAILED';

/** One quantity per SKU (an order may name a SKU on several lines), sorted by SKU: the order rows are locked in. */
export function quantitiesBySku(items: readonly OrderLine[]): [sku: string, qty: number][] {
  const totals = new Map<string, number>();
  for (const { sku, qty } of items) totals.set(sku, (totals.get(sku) ?? 0) + qty);
  return [...totals].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export type ReservationDecision =
  | { action: 'reserve'; quantities: [sku: string, qty: number][] }
  | { action: 'fail'; reason: InventoryFailureReason; skus: string[] };

/**
 * Whether an order's lines can all be held, given the current stock of every SKU it names
 * (absent from `stock` = unknown SKU). All or nothing: one unknown or short line fails the
 * whole order. `random` in [0, 1) below `failureRate` fails an order that would succeed.
 */
export function decideReservation(
  items: readonly OrderLine[],
  stock: ReadonlyMap<string, number>,
  simulation: { failureRate: number; random: number },
): ReservationDecision {
  const quantities = quantitiesBySku(items);
  const unknown = quantities.filter(([sku]) => !stock.has(sku)).map(([sku]) => sku);
  if (unknown.length) return { action: 'fail', reason: 'unknown_sku', skus: unknown };
  const short = quantities.filter(([sku, qty]) => stock.get(sku)! < qty).map(([sku]) => sku);
  if (short.length) return { action: 'fail', reason: 'out_of_stock', skus: short };
  if (simulation.random < simulation.failureRate) return { action: 'fail', reason: 'simulated', skus: quantities.map(([sku]) => sku) };
  return { action: 'reserve', quantities };
}

/** What an OrderCancelled does to an order's existing reservation record: only held stock goes back. */
export function decideRelease(existing: ReservationStatus): { action: 'release' } | { action: 'none'; because: ReservationStatus } {
  return existing === 'RESERVED' ? { action: 'release' } : { action: 'none', because: existing };
}
