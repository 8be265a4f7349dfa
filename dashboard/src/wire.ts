/*
 * What the dashboard's endpoints send, as types only: the page (dashboard/web) imports
 * them too, so this file imports nothing and holds no values.
 */

export type OrderStatus = 'PENDING' | 'CONFIRMED' | 'CANCELLED';

/** An order as GET /orders/:orderId shows it. */
export interface OrderSummary {
  orderId: string;
  sagaId: string;
  status: OrderStatus;
  reason: string | null;
  customerId: string | null;
  customerEmail: string;
  items: { sku: string; qty: number }[];
  amount: string;
  currency: string;
  createdAt: string;
  updatedAt: string;
}

/** One saga_history row as GET /dashboard/events streams it (`event: saga`), with its order as it is now. */
export interface SagaStep {
  /** saga_history.id */
  id: number;
  sagaId: string;
  orderId: string;
  eventId: string;
  /** The event consumed or emitted, or SagaTimedOut. */
  type: string;
  fromState: string | null;
  toState: string;
  compensation: boolean;
  at: string;
  order: OrderSummary;
}

/** GET /sagas/:sagaId */
export interface SagaView {
  sagaId: string;
  orderId: string;
  state: string;
  reason: string | null;
  timeoutAt: string;
  createdAt: string;
  updatedAt: string;
  history: { type: string; eventId: string; at: string; fromState: string | null; toState: string; compensation: boolean }[];
}

/** ok: read just now; not_configured: its DASHBOARD_*_URL is unset; unreachable: the read failed. */
export type SourceStatus = 'ok' | 'not_configured' | 'unreachable';

export interface Product {
  sku: string;
  name: string;
  price: string;
  stock: number;
}

/** The catalogue, read from inventory's GET /products. */
export interface ProductsPanel {
  status: SourceStatus;
  /** The order service setting that names inventory. */
  setting: string;
  products: Product[];
  error?: string;
}

export interface ServiceCounters {
  service: 'order' | 'payment' | 'inventory' | 'notification';
  status: SourceStatus;
  /** The order service setting that names this service; absent for order itself. */
  setting?: string;
  /** Outbox rows not yet published; null where unknown, or for notification, which has no outbox. */
  outboxBacklog: number | null;
  /** Deliveries that failed and were sent to a retry queue, since that process started. */
  retried: number | null;
  /** Messages sent to the dead-letter queue, since that process started. */
  deadLettered: number | null;
  /**
   * Of those, messages of compensation handlers (a refund, a stock release), since that process
   * started: each is an order that keeps its charge or its stock until it is replayed.
   */
  compensationsDeadLettered: number | null;
  /** Messages waiting in the service's dead-letter queue now, as the broker says (so across restarts); null where unknown. */
  deadLetterQueue: number | null;
  error?: string;
}

export interface ReliabilityPanel {
  services: ServiceCounters[];
  /** Orders cancelled with reason timeout, from the order database (so across restarts). */
  sagasTimedOut: number;
}

export interface DashboardSettings {
  sagaTimeoutMs: number;
  /** DASHBOARD_PAYMENT_PROCESSING_MS: what this order service is told payment's PAYMENT_PROCESSING_MS is; null: not told. */
  paymentProcessingMs: number | null;
  /** Whether a slow payment reaches the saga timeout with this configuration, and why (or why not). */
  slowPayment: { available: boolean; reason: string };
}

/** GET /dashboard/state: everything the page shows, and where the event stream should resume for it. */
export interface DashboardState {
  /** Open GET /dashboard/events?after=<resumeFrom>: every saga_history row after it is not yet in this state. */
  resumeFrom: number;
  settings: DashboardSettings;
  /** The newest orders, newest first. */
  orders: OrderSummary[];
  products: ProductsPanel;
  reliability: ReliabilityPanel;
}
