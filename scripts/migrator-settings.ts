import { Type } from 'typebox';

const url = (service: string) =>
  Type.String({
    default: `postgres://postgres@127.0.0.1:5432/checkout_${service}`,
    pattern: '^postgres(ql)?://',
    description: `the ${service} service's PostgreSQL URL (created if missing)`,
  });

/** The migrator brings all three service databases up to date, so it is the one process that knows all three URLs. */
export const migratorSettings = {
  ORDER_DATABASE_URL: url('order'),
  PAYMENT_DATABASE_URL: url('payment'),
  INVENTORY_DATABASE_URL: url('inventory'),
  SEED_PRODUCTS: Type.Boolean({ default: true, description: 'true to add any missing demo product to the catalogue (existing rows are left alone), else false' }),
};
