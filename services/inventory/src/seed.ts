/** Adds the demo products to the inventory database named by DATABASE_URL (already migrated); idempotent. */
import { configOrExit, createDatabase } from '@checkout-saga/shared';
import type { InventoryTables } from './db.ts';
import { seedProducts } from './seed-products.ts';
import { inventorySettings } from './settings.ts';

const config = configOrExit(inventorySettings);
const { db, close } = createDatabase<InventoryTables>(config.DATABASE_URL, 1);
try {
  const added = await seedProducts(db);
  process.stdout.write(`${added} demo product(s) added\n`);
} catch (error) {
  process.stderr.write(`seeding failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await close();
}
