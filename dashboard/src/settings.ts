import { Type, type Static, type TObject } from 'typebox';

/*
 * The environment the dashboard reads, spread into the order service's settings (it runs in
 * that process). The other services are shown read-only, a UI convenience outside the saga:
 * a URL left unset leaves its panel saying "not configured".
 */
export const dashboardSettings = {
  DASHBOARD_INVENTORY_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "inventory's base URL, such as http://127.0.0.1:3002, whose GET /products and GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_PAYMENT_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "payment's base URL, such as http://127.0.0.1:3001, whose GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_NOTIFICATION_URL: Type.Optional(
    Type.String({ pattern: '^https?://', description: "notification's base URL, such as http://127.0.0.1:3003, whose GET /metrics the dashboard shows; unset: not shown" }),
  ),
  DASHBOARD_PAYMENT_PROCESSING_MS: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 600_000,
      description: "payment's PAYMENT_PROCESSING_MS as far as this service is told, from 0 to 600000, so the dashboard knows whether a slow payment reaches SAGA_TIMEOUT_MS; unset: unknown",
    }),
  ),
};

/** The dashboard's settings, and the order service's saga timeout it compares a slow payment with. */
export type DashboardConfig = Static<TObject<typeof dashboardSettings>> & { SAGA_TIMEOUT_MS: number };
