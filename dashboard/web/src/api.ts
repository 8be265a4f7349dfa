import type { DashboardState, SagaView } from '../../src/wire.ts';

/* The order service's HTTP API, as the page uses it: the same POST /orders any client calls. */

export interface OrderRequest {
  customerEmail: string;
  items: { sku: string; qty: number }[];
  amount: string;
  currency?: string;
}

export interface Accepted {
  orderId: string;
  sagaId: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function json<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => undefined)) as (T & { message?: string }) | undefined;
  if (!response.ok) throw new ApiError(response.status, body?.message ?? `${response.status} ${response.statusText}`);
  return body as T;
}

export async function dashboardState(): Promise<DashboardState> {
  return json<DashboardState>(await fetch('/dashboard/state', { headers: { accept: 'application/json' } }));
}

export async function saga(sagaId: string): Promise<SagaView> {
  return json<SagaView>(await fetch(`/sagas/${encodeURIComponent(sagaId)}`, { headers: { accept: 'application/json' } }));
}

export async function placeOrder(order: OrderRequest): Promise<Accepted> {
  return json<Accepted>(
    await fetch('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(order),
    }),
  );
}
