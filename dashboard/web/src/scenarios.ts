import type { DashboardSettings, Product, ProductsPanel } from '../../src/wire.ts';
import type { OrderRequest } from './api.ts';
import { fromMinor, toMinor } from './format.ts';

/*
 * The one-click scenarios: each is a set of ordinary POST /orders requests, chosen from the
 * catalogue as the page sees it (with the demo catalogue's SKUs when inventory is not configured).
 */

export type ScenarioId = 'happy' | 'declined' | 'out-of-stock' | 'unknown-product' | 'burst' | 'slow-payment';

export interface Plan {
  orders: OrderRequest[];
  /** What the page says it did. */
  summary: string;
  /** Follow the first order's timeline. */
  follow: boolean;
}

export interface Scenario {
  id: ScenarioId;
  label: string;
  description: string;
  /** Why the button cannot be used now, if it cannot. */
  unavailable?: string;
  plan(): Plan;
}

const BURST = 30;

/** The demo catalogue (services/inventory/src/seed-products.ts), for when the page cannot read inventory. */
const fallback: Record<string, Product> = {
  everyday: { sku: 'KEYBOARD', name: 'Mechanical keyboard', price: '89.99', stock: 100 },
  scarce: { sku: 'LIMITED-EDITION', name: 'Limited-edition desk mat', price: '49.00', stock: 5 },
};

const times = (price: string, qty: number) => fromMinor(toMinor(price) * qty);

export function scenarios(catalogue: ProductsPanel, settings: DashboardSettings): Scenario[] {
  const known = catalogue.status === 'ok' && catalogue.products.length > 0;
  const products = known ? catalogue.products : [];
  // The low-stock product: the one with the least stock left (the demo's LIMITED-EDITION).
  const scarce = [...products].sort((a, b) => a.stock - b.stock || a.sku.localeCompare(b.sku))[0] ?? fallback.scarce!;
  // An everyday product: plenty of stock, preferring the demo's KEYBOARD.
  const everyday =
    products.find((product) => product.sku === 'KEYBOARD' && product.stock > 0) ??
    [...products].sort((a, b) => b.stock - a.stock)[0] ??
    fallback.everyday!;
  const shortBy = known ? Math.min(1000, scarce.stock + 1) : 1000;
  const one = (email: string, product: Product, amount = product.price, qty = 1): OrderRequest => ({
    customerEmail: email,
    items: [{ sku: product.sku, qty }],
    amount: qty === 1 ? amount : times(product.price, qty),
    currency: 'USD',
  });

  return [
    {
      id: 'happy',
      label: 'Happy path',
      description: `1 × ${everyday.sku}: charged, reserved, confirmed.`,
      plan: () => ({ orders: [one('happy@example.com', everyday)], summary: `Happy path: 1 × ${everyday.sku} for ${everyday.price}.`, follow: true }),
    },
    {
      id: 'declined',
      label: 'Payment declined',
      description: 'Amount 0.50: payment declines it, the order is cancelled.',
      plan: () => ({ orders: [one('declined@example.com', everyday, '0.50')], summary: `Payment declined: 1 × ${everyday.sku} for 0.50.`, follow: true }),
    },
    {
      id: 'out-of-stock',
      label: 'Out of stock',
      description: `${shortBy} × ${scarce.sku}${known ? ` (stock ${scarce.stock})` : ''}: charged, not reservable, refunded, cancelled.`,
      plan: () => ({
        orders: [one('out-of-stock@example.com', scarce, scarce.price, shortBy)],
        summary: `Out of stock: ${shortBy} × ${scarce.sku}${known ? ` with ${scarce.stock} in stock` : ''}.`,
        follow: true,
      }),
    },
    {
      id: 'unknown-product',
      label: 'Unknown product',
      description: 'A SKU inventory does not have: charged, refunded, cancelled.',
      plan: () => ({
        orders: [{ customerEmail: 'unknown-product@example.com', items: [{ sku: 'NO-SUCH-PRODUCT', qty: 1 }], amount: '10.00', currency: 'USD' }],
        summary: 'Unknown product: 1 × NO-SUCH-PRODUCT for 10.00.',
        follow: true,
      }),
    },
    {
      id: 'burst',
      label: `Burst of ${BURST}`,
      description: `${BURST} orders at once for 1 × ${scarce.sku}${known ? ` (stock ${scarce.stock})` : ''}: stock never goes below zero.`,
      plan: () => ({
        orders: Array.from({ length: BURST }, (_, index) => one(`burst-${String(index + 1).padStart(2, '0')}@example.com`, scarce)),
        summary: `Burst: ${BURST} concurrent orders for 1 × ${scarce.sku}${known ? ` with ${scarce.stock} in stock` : ''}.`,
        follow: false,
      }),
    },
    {
      id: 'slow-payment',
      label: 'Slow payment → timeout',
      description: settings.slowPayment.reason,
      ...(settings.slowPayment.available ? {} : { unavailable: settings.slowPayment.reason }),
      plan: () => ({
        orders: [one('slow-payment@example.com', everyday)],
        summary: `Slow payment: 1 × ${everyday.sku}; the saga times out after ${settings.sagaTimeoutMs} ms.`,
        follow: true,
      }),
    },
  ];
}
