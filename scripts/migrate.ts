/**
 * Migrates every service database (creating it when missing) and seeds the demo
 * catalogue. Idempotent: `npm start` and the compose migrator run it on every start.
 */
import { Type } from 'typebox';
import { ConfigError, createDatabase, loadConfig, migrateDatabase } from '@checkout-saga/shared/internal';
import { seedProducts, type InventoryTables } from '@checkout-saga/inventory';
import { migratorSettings } from './migrator-settings.ts';

export async function migrateAll(env: Record<string, string | undefined> = process.env, log = (line: string) => console.log(line)): Promise<void> {
  const config = loadConfig(Type.Object(migratorSettings), env);
  const targets = [
    ['order', config.ORDER_DATABASE_URL],
    ['payment', config.PAYMENT_DATABASE_URL],
    ['inventory', config.INVENTORY_DATABASE_URL],
  ] as const;
  for (const [service, databaseUrl] of targets) {
    await migrateDatabase({ databaseUrl, service, log: (line) => log(`[migrate ${service}] ${line}`) });
  }
  if (config.SEED_PRODUCTS) {
    const { db, close } = createDatabase<InventoryTables>(config.INVENTORY_DATABASE_URL, 1);
    try {
      const added = await seedProducts(db);
      log(`[seed] ${added} demo product(s) added`);
    } finally {
      await close();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('migrate.js')) {
  migrateAll().then(
    () => process.exit(0),
    (error: Error) => {
      process.stderr.write(`${error instanceof ConfigError ? 'configuration error' : 'migration failed'}: ${error.message}\n`);
      process.exit(error instanceof ConfigError ? 78 : 1);
    },
  );
}
