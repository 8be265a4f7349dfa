import type { Kysely } from 'kysely';
import type { InventoryTables } from './db.ts';

/** The demo catalogue; LIMITED-EDITION has so little stock that running out is easy to see. */
export const demoProducts = [
  { sku: 'KEYBOARD', name: 'Mechanical keyboard', price_minor: 8_999, stock: 100 },
  { sku: 'MOUSE', name: 'Wireless mouse', price_minor: 2_950, stock: 200 },
  { sku: 'MONITOR', name: '27" 4K monitor', price_minor: 32_900, stock: 30 },
  { sku: 'HEADSET', name: 'Noise-cancelling headset', price_minor: 12_550, stock: 50 },
  { sku: 'LIMITED-EDITION', name: 'Limited-edition desk mat', price_minor: 4_900, stock: 5 },
] as const;

/** Adds the demo products that are missing, leaving existing ones (and their stock) alone; returns how many were added. */
export async function seedProducts(db: Kysely<InventoryTables>): Promise<number> {
  const result = await db
    .insertInto('products')
    .values(demoProducts.map((product) => ({ ...product })))
    .onConflict((conflict) => conflict.column('sku').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}
