import { errorResponses, formatMinor, HttpError, parseAmount, type HttpApp } from '@checkout-saga/shared';
import { timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { Type } from 'typebox';
import type { InventoryTables, Product } from '../db.ts';

const Sku = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', examples: ['KEYBOARD'] });
const SkuParams = Type.Object({ sku: Sku });
const ProductView = Type.Object(
  {
    sku: Type.String(),
    name: Type.String(),
    price: Type.String({ pattern: '^\\d+\\.\\d{2}$', description: 'Two decimals, e.g. "89.99"' }),
    stock: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false, description: 'A product, its price and its stock' },
);
const ProductBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    // A number (12.5) or a decimal string ("12.50"); parseAmount checks the two decimals.
    price: Type.Union([Type.String({ minLength: 1, maxLength: 20 }), Type.Number({ minimum: 0 })]),
    stock: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
  },
  { additionalProperties: false, examples: [{ name: 'Mechanical keyboard', price: '89.99', stock: 100 }] },
);

export function productRoutes(app: HttpApp, db: Kysely<InventoryTables>, adminToken: string | undefined): void {
  app.get('/products', { schema: { summary: 'The catalogue, by SKU', response: { 200: Type.Array(ProductView, { description: 'Every product, by SKU' }) } } }, async () => {
    const products = await db.selectFrom('products').selectAll().orderBy(sql`sku collate "C"`).execute();
    return products.map(productView);
  });

  app.get('/products/:sku', { schema: { summary: 'One product', params: SkuParams, response: { 200: ProductView, ...errorResponses({ 404: 'No such product' }) } } }, async (request) => {
    const product = await db.selectFrom('products').selectAll().where('sku', '=', request.params.sku).executeTakeFirst();
    if (!product) throw new HttpError(404, 'not_found', `no product ${request.params.sku}`);
    return productView(product);
  });

  app.put(
    '/products/:sku',
    {
      schema: {
        summary: 'Create or replace a product (needs Authorization: Bearer <ADMIN_TOKEN> when ADMIN_TOKEN is set)',
        params: SkuParams,
        body: ProductBody,
        response: {
          200: { ...ProductView, description: 'Replaced' },
          201: { ...ProductView, description: 'Created' },
          ...errorResponses({ 401: 'ADMIN_TOKEN is set and the request does not carry it' }),
        },
      },
      // Before the body is even validated: an unauthorised caller learns nothing about it.
      onRequest: async (request, reply) => {
        if (adminToken === undefined || bearerMatches(request.headers.authorization, adminToken)) return;
        reply.header('www-authenticate', 'Bearer');
        throw new HttpError(401, 'unauthorized', 'PUT /products/:sku needs the header Authorization: Bearer <ADMIN_TOKEN>');
      },
    },
    async (request, reply) => {
      const { name, price, stock } = request.body;
      const priceMinor = parseAmount(price);
      if (priceMinor === undefined) {
        throw new HttpError(400, 'validation_failed', 'body.price must be a non-negative amount with at most two decimals, as a number or a string such as "12.50"', [
          { path: '/price', message: 'must be a non-negative amount with at most two decimals' },
        ]);
      }
      const row = await db
        .insertInto('products')
        .values({ sku: request.params.sku, name, price_minor: priceMinor, stock })
        .onConflict((conflict) =>
          conflict.column('sku').doUpdateSet({ name, price_minor: priceMinor, stock, updated_at: sql<Date>`now()` }),
        )
        .returningAll()
        .returning(sql<boolean>`xmax = 0`.as('inserted'))
        .executeTakeFirstOrThrow();
      return reply.status(row.inserted ? 201 : 200).send(productView(row));
    },
  );
}

/** The public shape of a product: the price as a two-decimal string. */
export function productView(product: Product) {
  return { sku: product.sku, name: product.name, price: formatMinor(product.price_minor), stock: product.stock };
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const presented = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
