import { waitFor } from '@checkout-saga/shared/testing';
import type { System } from './system.ts';

export interface OrderRequest {
  customerId?: string;
  customerEmail: string;
  items: { sku: string; qty: number }[];
  amount: number | string;
  currency?: string;
}

export interface OrderView {
  orderId: string;
  sagaId: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
  amount: string;
}

export const order = (overrides: Partial<OrderRequest> = {}): OrderRequest => ({
  customerEmail: 'ada@example.com',
  items: [{ sku: 'KEYBOARD', qty: 1 }],
  amount: '125.50',
  ...overrides,
});

export async function placeOrder(system: Pick<System, 'orderUrl'>, body: OrderRequest, headers: Record<string, string> = {}) {
  const response = await fetch(`${system.orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { orderId: string; sagaId: string; status: string };
  if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as T };
}

/** Waits until the order has left PENDING and returns it. */
export async function settledOrder(system: Pick<System, 'orderUrl'>, orderId: string, timeoutMs = 20_000): Promise<OrderView> {
  return waitFor(
    async () => {
      const { body } = await getJson<OrderView>(`${system.orderUrl}/orders/${orderId}`);
      return body.status === 'PENDING' ? undefined : body;
    },
    { timeoutMs, message: `order ${orderId} to settle` },
  );
}
