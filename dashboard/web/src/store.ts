import type { DashboardSettings, OrderSummary, ProductsPanel, ReliabilityPanel, SagaStep, SagaView } from '../../src/wire.ts';

/* What the page knows, and the one place that changes it. Views read it; `changed` schedules their redraw. */

export interface TimelineEntry {
  type: string;
  eventId: string;
  at: string;
  fromState: string | null;
  toState: string;
  compensation: boolean;
}

export type Part = 'orders' | 'timeline' | 'catalogue' | 'reliability' | 'scenarios' | 'connection' | 'group';

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'offline';

/** Orders one scenario placed together (the burst), followed live. */
export interface Group {
  label: string;
  orderIds: string[];
  failed: number;
}

const MAX_ORDERS = 1000;
const MAX_SEEN = 20_000;

export const store = {
  settings: undefined as DashboardSettings | undefined,
  orders: new Map<string, OrderSummary>(),
  products: { status: 'not_configured', setting: 'DASHBOARD_INVENTORY_URL', products: [] } as ProductsPanel,
  /** Stock as it was before the last change, per SKU, and when it changed. */
  stockMoves: new Map<string, { delta: number; at: number }>(),
  reliability: undefined as ReliabilityPanel | undefined,
  selected: undefined as string | undefined,
  sagaViews: new Map<string, SagaView>(),
  /** Saga steps streamed since the page loaded, per saga. */
  steps: new Map<string, TimelineEntry[]>(),
  seen: new Set<number>(),
  connection: 'connecting' as Connection,
  filter: { status: '', text: '' },
  shown: 30,
  group: undefined as Group | undefined,
};

let redraw: (parts: Set<Part>) => void = () => {};
const dirty = new Set<Part>();
let pending = false;

export function onRedraw(draw: (parts: Set<Part>) => void): void {
  redraw = draw;
}

/** Redraws the given parts soon, once per frame however many changes came in. */
export function changed(...parts: Part[]): void {
  for (const part of parts) dirty.add(part);
  if (pending) return;
  pending = true;
  const flush = () => {
    if (!pending) return;
    pending = false;
    const parts = new Set(dirty);
    dirty.clear();
    redraw(parts);
  };
  requestAnimationFrame(flush);
  setTimeout(flush, 100); // a hidden tab gets no animation frames
}

/** Keeps whichever version of an order is newer. */
export function upsertOrder(order: OrderSummary): OrderSummary | undefined {
  const known = store.orders.get(order.orderId);
  if (known && known.updatedAt > order.updatedAt) return known;
  store.orders.set(order.orderId, order);
  if (store.orders.size > MAX_ORDERS) {
    const oldest = [...store.orders.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).slice(0, store.orders.size - MAX_ORDERS);
    for (const old of oldest) {
      if (old.orderId === store.selected) continue;
      store.orders.delete(old.orderId);
      store.steps.delete(old.sagaId);
      store.sagaViews.delete(old.sagaId);
    }
  }
  changed('orders', 'group');
  return known;
}

export function setProducts(panel: ProductsPanel): void {
  const before = new Map(store.products.products.map((product) => [product.sku, product.stock]));
  for (const product of panel.products) {
    const previous = before.get(product.sku);
    if (previous !== undefined && previous !== product.stock) store.stockMoves.set(product.sku, { delta: product.stock - previous, at: Date.now() });
  }
  store.products = panel;
  changed('catalogue', 'scenarios');
}

export function setReliability(panel: ReliabilityPanel): void {
  store.reliability = panel;
  changed('reliability');
}

export function setConnection(connection: Connection): void {
  if (store.connection === connection) return;
  store.connection = connection;
  changed('connection');
}

const entryKey = (entry: TimelineEntry) => `${entry.type}|${entry.eventId}`;

/** Takes one streamed saga step; false when it was seen before. */
export function addStep(step: SagaStep): boolean {
  if (store.seen.has(step.id)) return false;
  store.seen.add(step.id);
  if (store.seen.size > MAX_SEEN) for (const id of [...store.seen].slice(0, MAX_SEEN / 2)) store.seen.delete(id);
  const entries = store.steps.get(step.sagaId) ?? [];
  const entry: TimelineEntry = { type: step.type, eventId: step.eventId, at: step.at, fromState: step.fromState, toState: step.toState, compensation: step.compensation };
  if (!entries.some((known) => entryKey(known) === entryKey(entry))) entries.push(entry);
  store.steps.set(step.sagaId, entries);
  if (store.selected && store.orders.get(store.selected)?.sagaId === step.sagaId) changed('timeline');
  return true;
}

/** The selected saga's steps: what GET /sagas/:sagaId returned, plus what streamed in, in time order. */
export function timelineOf(sagaId: string): TimelineEntry[] {
  const fetched = store.sagaViews.get(sagaId)?.history ?? [];
  const merged = new Map<string, TimelineEntry>();
  for (const entry of [...fetched, ...(store.steps.get(sagaId) ?? [])]) if (!merged.has(entryKey(entry))) merged.set(entryKey(entry), entry);
  return [...merged.values()].sort((a, b) => a.at.localeCompare(b.at));
}

export function visibleOrders(): OrderSummary[] {
  const text = store.filter.text.trim().toLowerCase();
  return [...store.orders.values()]
    .filter((order) => !store.filter.status || order.status === store.filter.status)
    .filter(
      (order) =>
        !text ||
        [order.orderId, order.sagaId, order.customerEmail, order.reason ?? '', order.status, ...order.items.map((item) => item.sku)].some((field) =>
          field.toLowerCase().includes(text),
        ),
    )
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.orderId.localeCompare(a.orderId));
}
