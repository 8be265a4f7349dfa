import amqp from 'amqplib';
import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { currencies, eventTypes, isEventType, MAX_AMOUNT_MINOR, parseEnvelope, routingKeyOf, type EventType } from '@checkout-saga/shared/internal';
import { waitFor } from '@checkout-saga/shared/testing';
import { v4, v7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DeadLetterQueues, serviceNames } from '../scripts/dlq/dead-letters.ts';
import { messageCounts } from './support/broker.ts';
import { order, placeOrder, settledOrder } from './support/client.ts';
import { startSystem, type System } from './support/system.ts';

/*
 * Generated input against the running system. POST /orders gets bodies of every kind (valid
 * ones, JSON that is not, wrong types, huge numbers, unicode, deep nesting, long strings,
 * prototype-pollution keys) and must answer 202 exactly for the valid ones and a 4xx
 * { error, message } for the rest, never a 5xx, writing all of an order or none of it. The
 * exchange gets envelopes no service can apply (random bytes and JSON, well-shaped envelopes
 * with wrong payloads, unknown types, corrupted headers): each must land in the dead-letter
 * queue of every service it reaches, with a reason, and change nothing in any database; no
 * service may fall over.
 *
 * fast-check prints the seed of a failing run; `fc.assert(..., { seed, path })` replays it.
 */

const HTTP_RUNS = 200;
const ENVELOPE_RUNS = 100;

let system: System;
let queues: DeadLetterQueues;

beforeAll(async () => {
  system = await startSystem('fuzz');
  queues = await DeadLetterQueues.connect(system.amqpUrl, system.queuePrefix);
});

afterAll(async () => {
  await queues?.close();
  await system?.stop();
});

// ---------------------------------------------------------------------------------------------
// What POST /orders must accept, written from the contract (docs/design.md), not from the server's code
// ---------------------------------------------------------------------------------------------

const ORDER_KEYS = new Set(['customerId', 'customerEmail', 'items', 'amount', 'currency']);
const EMAIL = /^[^\s@]+@[^\s@]+$/u;
const SKU = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DECIMAL = /^(\d+)(?:\.(\d{1,2}))?$/;
const MAX_BODY_BYTES = 1024 * 1024;

/** Length as JSON Schema counts it: in code points. */
const length = (text: string) => [...text].length;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
/** PostgreSQL text cannot hold U+0000 and UTF-8 cannot encode a lone surrogate. */
const storable = (text: string) => !text.includes('\u0000') && !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);

interface ExpectedOrder {
  customerId: string | null;
  customerEmail: string;
  items: { sku: string; qty: number }[];
  amountMinor: number;
  currency: string;
}

type Verdict = { accepted: false } | { accepted: true; order: ExpectedOrder; storable: boolean };

function amountMinor(value: unknown): number | undefined {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    text = String(value);
  } else if (typeof value === 'string') {
    if (length(value) > 32) return undefined;
    text = value;
  } else {
    return undefined;
  }
  const match = DECIMAL.exec(text);
  if (!match) return undefined;
  const minor = BigInt(match[1]!) * 100n + BigInt((match[2] ?? '').padEnd(2, '0'));
  return minor <= BigInt(MAX_AMOUNT_MINOR) ? Number(minor) : undefined;
}

function verdict(text: string, contentType: string): Verdict {
  const no = { accepted: false } as const;
  if (!/^application\/json\s*(;|$)/i.test(contentType) || Buffer.byteLength(text) > MAX_BODY_BYTES) return no;
  let body: unknown;
  try {
    body = JSON.parse(text.replace(/^\ufeff/, ''));
  } catch {
    return no;
  }
  if (!isObject(body) || Object.keys(body).some((key) => !ORDER_KEYS.has(key))) return no;
  const { customerId, customerEmail, items, amount, currency } = body;
  if (customerId !== undefined && (typeof customerId !== 'string' || length(customerId) < 1 || length(customerId) > 128)) return no;
  if (typeof customerEmail !== 'string' || length(customerEmail) < 3 || length(customerEmail) > 254 || !EMAIL.test(customerEmail)) return no;
  if (!Array.isArray(items) || items.length < 1 || items.length > 50) return no;
  for (const item of items) {
    if (!isObject(item) || Object.keys(item).length !== 2) return no;
    const { sku, qty } = item;
    if (typeof sku !== 'string' || length(sku) < 1 || length(sku) > 64 || !SKU.test(sku)) return no;
    if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > 1000) return no;
  }
  const minor = amountMinor(amount);
  if (minor === undefined) return no;
  if (currency !== undefined && !(currencies as readonly unknown[]).includes(currency)) return no;
  return {
    accepted: true,
    order: {
      customerId: customerId ?? null,
      customerEmail,
      items: (items as { sku: string; qty: number }[]).map(({ sku, qty }) => ({ sku, qty })),
      amountMinor: minor,
      currency: (currency as string | undefined) ?? 'USD',
    },
    storable: storable(customerEmail) && (customerId === undefined || storable(customerId)),
  };
}

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

interface HttpCase {
  label: string;
  text: string;
  contentType: string;
}

const anyText = (maxLength = 40) => fc.string({ unit: 'binary', maxLength });
const json = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
const knownSku = fc.constantFrom('KEYBOARD', 'MOUSE', 'MONITOR', 'HEADSET', 'LIMITED-EDITION');
const sku = fc.oneof(knownSku, fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/));
const line = fc.record({ sku, qty: fc.integer({ min: 1, max: 1000 }) });
const items = fc.oneof({ arbitrary: fc.array(line, { minLength: 1, maxLength: 6 }), weight: 9 }, { arbitrary: fc.array(line, { minLength: 50, maxLength: 50 }), weight: 1 });
const unicodeWord = (maxLength: number) => fc.string({ unit: 'binary', minLength: 1, maxLength }).filter((text) => /^[^\s@]+$/u.test(text) && storable(text));
const email = fc.oneof(
  fc.tuple(fc.stringMatching(/^[a-z0-9._%+-]{1,20}$/), fc.stringMatching(/^[a-z0-9-]{1,15}\.[a-z]{2,6}$/)).map(([local, domain]) => `${local}@${domain}`),
  fc.tuple(unicodeWord(20), unicodeWord(20)).map(([local, domain]) => `${local}@${domain}`),
);
const amount = fc.oneof(
  fc.integer({ min: 0, max: MAX_AMOUNT_MINOR }).map((minor) => minor / 100),
  fc.integer({ min: 0, max: MAX_AMOUNT_MINOR }).map((minor) => `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`),
  fc.tuple(fc.stringMatching(/^0{0,3}[1-9]\d{0,5}$/), fc.constantFrom('', '.5', '.05', '.50')).map(([whole, fraction]) => `${whole}${fraction}`),
);
const validOrder = fc.record(
  {
    customerId: fc.string({ unit: 'binary', minLength: 1, maxLength: 128 }).filter(storable),
    customerEmail: email,
    items,
    amount,
    currency: fc.constantFrom(...currencies),
  },
  { requiredKeys: ['customerEmail', 'items', 'amount'] },
);

/** Sets an own, enumerable property, even `__proto__`, so JSON.stringify writes it as a key. */
function withKey<T extends object>(target: T, key: string, value: unknown): T {
  const copy = { ...target };
  Object.defineProperty(copy, key, { value, enumerable: true, configurable: true, writable: true });
  return copy;
}

/** JSON text of objects and arrays nested `depth` deep, built without recursion (JSON.stringify would overflow the stack). */
const nestedJson = (depth: number) => {
  const opening = Array.from({ length: depth }, (_, level) => (level % 2 ? '[' : '{"a":')).join('');
  const closing = Array.from({ length: depth }, (_, level) => (level % 2 ? ']' : '}')).reverse().join('');
  return `${opening}1${closing}`;
};
const DEEP = '\u0000deep';
/** `value` as JSON with the property `key` set to the raw JSON text `raw`. */
const withRawJson = (value: object, key: string, raw: string) => JSON.stringify({ ...value, [key]: DEEP }).replace(JSON.stringify(DEEP), raw);

const edgeAmounts = fc.constantFrom<unknown>(
  -1, -0.01, 1.005, 0.1 + 0.2, 1e21, 1e308, Number.MAX_SAFE_INTEGER, 1000000000.01, 1000000000, 100000000000,
  '1e5', ' 1.00', '1,00', '1.', '.5', '+1', '-0', 'NaN', 'Infinity', '0x10', '١٢٣', '１２３', '', '9'.repeat(40), '1.000', null, true, [], {},
);

const mutation = fc.oneof(
  // a required key left out
  fc.tuple(validOrder, fc.constantFrom('customerEmail', 'items', 'amount')).map(([body, key]) => ({ label: `without ${key}`, body: Object.fromEntries(Object.entries(body).filter(([name]) => name !== key)) as object })),
  // a key (known or not) set to any JSON value: wrong types, nulls, nested objects, unicode strings
  fc.tuple(validOrder, fc.constantFrom('customerId', 'customerEmail', 'items', 'amount', 'currency'), json).map(([body, key, value]) => ({ label: `${key} = any JSON`, body: { ...body, [key]: value } })),
  fc.tuple(validOrder, fc.constantFrom('sku', 'qty', 'extra'), json).map(([body, key, value]) => ({ label: `items[0].${key} = any JSON`, body: { ...body, items: [{ ...body.items[0]!, [key]: value }, ...body.items.slice(1)] } })),
  // extra keys, prototype pollution among them, at the top or in a line
  fc.tuple(validOrder, fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', ''), anyText(10)), json, fc.boolean()).map(([body, key, value, inLine]) => ({
    label: `extra key ${JSON.stringify(key)}${inLine ? ' in a line' : ''}`,
    body: inLine ? { ...body, items: [withKey(body.items[0]!, key, value), ...body.items.slice(1)] } : withKey(body, key, value),
  })),
  fc.tuple(validOrder, fc.constantFrom({ polluted: true }, { constructor: { prototype: { polluted: true } } })).map(([body, poison]) => ({
    label: 'prototype pollution',
    body: withKey(body, '__proto__', poison),
  })),
  // amounts: huge, negative, exponent, too precise, non-ASCII digits, any double, any text
  fc.tuple(validOrder, fc.oneof(edgeAmounts, fc.double(), anyText(40))).map(([body, value]) => ({ label: 'odd amount', body: { ...body, amount: value } })),
  // lines: none, too many, odd quantities and SKUs
  fc.tuple(validOrder, fc.constantFrom<unknown>([], Array.from({ length: 51 }, () => ({ sku: 'MOUSE', qty: 1 })), [{ sku: 'MOUSE', qty: 0 }], [{ sku: 'MOUSE', qty: 1001 }], [{ sku: 'MOUSE', qty: 1.5 }], [{ sku: 'MOUSE', qty: '1' }], [{ sku: 'MOUSE', qty: 1e308 }], [{ sku: '', qty: 1 }], [{ sku: '-x', qty: 1 }], [{ sku: 'a b', qty: 1 }], [{ sku: 'é', qty: 1 }], [{ sku: 'X'.repeat(65), qty: 1 }], [{ sku: 'MOUSE' }], [null], 'MOUSE')).map(([body, value]) => ({ label: 'odd items', body: { ...body, items: value } })),
  // emails and long strings
  fc.tuple(validOrder, fc.constantFrom('', 'a', 'a@', '@b', 'a b@c', 'a@b@c', 'a\t@b', `${'x'.repeat(251)}@b.c`, `${'é'.repeat(251)}@b.c`)).map(([body, value]) => ({ label: 'odd email', body: { ...body, customerEmail: value } })),
  fc.tuple(validOrder, fc.constantFrom('x'.repeat(129), 'é'.repeat(129), '😀'.repeat(129), 'x'.repeat(10_000), '')).map(([body, value]) => ({ label: 'odd customerId', body: { ...body, customerId: value } })),
  fc.tuple(validOrder, fc.constantFrom('usd', 'XXX', 'EURO', '€', 1, null)).map(([body, value]) => ({ label: 'odd currency', body: { ...body, currency: value } })),
  // deep nesting
  fc.tuple(validOrder, fc.constantFrom('customerId', 'items', 'amount', 'extra'), fc.integer({ min: 10, max: 100_000 })).map(([body, key, depth]) => ({ label: `${key} nested ${depth} deep`, body, text: withRawJson(body, key, nestedJson(depth)) })),
);

const httpCase: fc.Arbitrary<HttpCase> = fc.oneof(
  { arbitrary: validOrder.map((body) => ({ label: 'valid', text: JSON.stringify(body), contentType: 'application/json' })), weight: 6 },
  { arbitrary: mutation.map((mutated: { label: string; body: object; text?: string }) => ({ label: mutated.label, text: mutated.text ?? JSON.stringify(mutated.body), contentType: 'application/json' })), weight: 8 },
  // text that is not JSON, or JSON that is not an object
  { arbitrary: anyText(200).map((text) => ({ label: 'any text', text, contentType: 'application/json' })), weight: 1 },
  { arbitrary: json.map((value) => ({ label: 'any JSON', text: JSON.stringify(value), contentType: 'application/json' })), weight: 1 },
  { arbitrary: fc.tuple(validOrder, fc.nat()).map(([body, cut]) => { const text = JSON.stringify(body); return { label: 'cut short', text: text.slice(0, cut % text.length), contentType: 'application/json' }; }), weight: 1 },
  { arbitrary: validOrder.map((body) => ({ label: 'trailing garbage', text: `${JSON.stringify(body)}}`, contentType: 'application/json' })), weight: 1 },
  // a valid body under another content type, or with a charset
  { arbitrary: fc.tuple(validOrder, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8')).map(([body, contentType]) => ({ label: contentType, text: JSON.stringify(body), contentType })), weight: 1 },
);

/** Cases too big or too odd to leave to chance, run once each. */
const fixedCases: HttpCase[] = [
  { label: 'empty body', text: '', contentType: 'application/json' },
  { label: 'null', text: 'null', contentType: 'application/json' },
  { label: 'empty object', text: '{}', contentType: 'application/json' },
  { label: 'a number too big for a double', text: '1e400', contentType: 'application/json' },
  { label: 'amount too big for a double', text: '{"customerEmail":"a@b.c","items":[{"sku":"MOUSE","qty":1}],"amount":1e400}', contentType: 'application/json' },
  { label: 'qty with 400 digits', text: `{"customerEmail":"a@b.c","items":[{"sku":"MOUSE","qty":${'9'.repeat(400)}}],"amount":"1.00"}`, contentType: 'application/json' },
  { label: '100 000 nested arrays', text: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, contentType: 'application/json' },
  { label: '__proto__ first', text: '{"__proto__":{"polluted":true},"customerEmail":"a@b.c","items":[{"sku":"MOUSE","qty":1}],"amount":"1.00"}', contentType: 'application/json' },
  { label: 'constructor.prototype', text: '{"constructor":{"prototype":{"polluted":true}},"customerEmail":"a@b.c","items":[{"sku":"MOUSE","qty":1}],"amount":"1.00"}', contentType: 'application/json' },
  { label: 'duplicate keys, the last one valid', text: '{"amount":"x","customerEmail":"a@b.c","items":[{"sku":"MOUSE","qty":1}],"amount":"2.00"}', contentType: 'application/json' },
  { label: 'a body over 1 MiB', text: JSON.stringify({ customerEmail: 'a@b.c', items: [{ sku: 'MOUSE', qty: 1 }], amount: '1.00', customerId: 'x'.repeat(MAX_BODY_BYTES) }), contentType: 'application/json' },
];

async function post(testCase: HttpCase): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${system.orderUrl}/orders`, { method: 'POST', headers: { 'content-type': testCase.contentType }, body: testCase.text });
  const raw = await response.text();
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    // kept as text; the assertions below say what was expected
  }
  return { status: response.status, body };
}

// ---------------------------------------------------------------------------------------------
// Checks on the databases and the broker
// ---------------------------------------------------------------------------------------------

/** A hash of every row of every table of the three databases, to tell whether anything at all was written. */
async function contentHash(): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {};
  for (const [name, db] of Object.entries({ order: system.orderDb, payment: system.paymentDb, inventory: system.inventoryDb }) as [string, Kysely<any>][]) {
    const { rows: tables } = await sql<{ table: string }>`select tablename as table from pg_tables where schemaname = 'public' order by tablename`.execute(db);
    for (const { table } of tables) {
      const { rows } = await sql<{ hash: string | null }>`select md5(string_agg(t::text, '|' order by t::text)) as hash from ${sql.table(table)} t`.execute(db);
      hashes[`${name}.${table}`] = rows[0]?.hash ?? 'empty';
    }
  }
  return hashes;
}

/** Waits until every saga has ended, every outbox row is published, every queue is empty, and nothing changes any more. */
async function quiescent(): Promise<Record<string, string>> {
  let previous: string | undefined;
  return waitFor(
    async () => {
      const pending = await system.orderDb.selectFrom('orders').select(sql<number>`count(*)::int`.as('n')).where('status', '=', 'PENDING').executeTakeFirstOrThrow();
      let unpublished = 0;
      for (const db of [system.orderDb, system.paymentDb, system.inventoryDb] as Kysely<any>[]) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from outbox where published_at is null`.execute(db);
        unpublished += rows[0]!.n;
      }
      const queued = await messageCounts(system, serviceNames);
      const hash = JSON.stringify(await contentHash());
      const settled = pending.n === 0 && unpublished === 0 && queued === 0 && hash === previous;
      previous = hash;
      return settled ? (JSON.parse(hash) as Record<string, string>) : undefined;
    },
    { intervalMs: 250, timeoutMs: 60_000, message: 'the system to settle (sagas ended, outboxes published, queues empty, no writes)' },
  );
}

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

interface EnvelopeCase {
  label: string;
  routingKey: string;
  body: Buffer;
  properties: { type?: string; contentType?: string; headers?: Record<string, unknown> };
}

const routingKeys = eventTypes.map(routingKeyOf);
const line1 = [{ sku: 'KEYBOARD', qty: 1 }];
/** A valid payload of each type, to corrupt. */
const validPayloads: Record<EventType, Record<string, unknown>> = {
  OrderCreated: { customerId: null, customerEmail: 'a@b.c', items: line1, amountMinor: 100, currency: 'EUR' },
  PaymentCompleted: { paymentId: v4(), items: line1, amountMinor: 100, currency: 'EUR' },
  PaymentFailed: { reason: 'declined', amountMinor: 100, currency: 'EUR' },
  InventoryReserved: { reservationId: v4(), items: line1 },
  InventoryFailed: { reason: 'out_of_stock', skus: ['KEYBOARD'] },
  PaymentRefundRequested: { reason: 'timeout' },
  PaymentRefunded: { paymentId: v4(), amountMinor: 100, currency: 'EUR' },
  OrderConfirmed: { customerEmail: 'a@b.c', items: line1, amountMinor: 100, currency: 'EUR' },
  OrderCancelled: { reason: 'timeout', customerEmail: 'a@b.c', items: line1, amountMinor: 100, currency: 'EUR' },
};

const header = fc.record({ eventId: fc.uuid(), sagaId: fc.uuid(), orderId: fc.uuid(), timestamp: fc.date({ noInvalidDate: true }).map((date) => date.toISOString()) });
const eventType = fc.constantFrom(...eventTypes);

const envelopeBody: fc.Arbitrary<{ label: string; body: Buffer }> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ label: 'random bytes', body: Buffer.from(bytes) })),
  json.map((value) => ({ label: 'random JSON', body: Buffer.from(JSON.stringify(value) ?? 'null') })),
  fc.tuple(header, eventType, fc.dictionary(anyText(12), json, { maxKeys: 5 })).map(([h, type, payload]) => ({ label: `${type} with a random payload`, body: Buffer.from(JSON.stringify({ ...h, type, version: 1, payload })) })),
  fc.tuple(header, eventType, fc.constantFrom(...Object.keys(validPayloads.OrderCancelled), 'paymentId', 'extra'), json).map(([h, type, key, value]) => ({
    label: `${type} with payload.${key} = any JSON`,
    body: Buffer.from(JSON.stringify({ ...h, type, version: 1, payload: { ...validPayloads[type], [key]: value } })),
  })),
  fc.tuple(header, anyText(80).filter((type) => !isEventType(type)), eventType).map(([h, type, like]) => ({ label: 'unknown type', body: Buffer.from(JSON.stringify({ ...h, type, version: 1, payload: validPayloads[like] })) })),
  fc.tuple(header, eventType, fc.constantFrom('eventId', 'type', 'sagaId', 'orderId', 'timestamp', 'version', 'payload'), fc.option(json, { nil: undefined })).map(([h, type, key, value]) => {
    const envelope: Record<string, unknown> = { ...h, type, version: 1, payload: validPayloads[type] };
    if (value === undefined) delete envelope[key];
    else envelope[key] = value;
    return { label: `${type} with ${key} ${value === undefined ? 'missing' : 'corrupted'}`, body: Buffer.from(JSON.stringify(envelope)) };
  }),
  fc.tuple(header, eventType, fc.constantFrom('payload', 'eventId', 'extra'), fc.integer({ min: 10, max: 100_000 })).map(([h, type, key, depth]) => ({
    label: `${key} nested ${depth} deep`,
    body: Buffer.from(withRawJson({ ...h, type, version: 1, payload: validPayloads[type] }, key, nestedJson(depth))),
  })),
  fc.tuple(header, eventType).map(([h, type]) => ({ label: 'prototype pollution in the payload', body: Buffer.from(`{"eventId":"${h.eventId}","type":"${type}","sagaId":"${h.sagaId}","orderId":"${h.orderId}","timestamp":"${h.timestamp}","version":1,"payload":{"__proto__":{"polluted":true}}}`) })),
);

const properties = fc.record(
  {
    type: anyText(30),
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/octet-stream'),
    headers: fc.record(
      {
        // Any finite number, or text. Not below -2^63: see the known bug at the end of the file. (RabbitMQ
        // closes a connection that sends an infinite one.)
        'x-attempt': fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true, min: -9e18 }), fc.constantFrom(0, -1, 1e30), anyText(10)),
        traceparent: anyText(60),
        'x-dead-letter-reason': anyText(20),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

const envelopeCase: fc.Arbitrary<EnvelopeCase> = fc
  .tuple(envelopeBody, fc.constantFrom(...routingKeys), properties)
  .filter(([{ body }]) => !parseEnvelope(body).ok) // only messages no service can apply
  .map(([{ label, body }, routingKey, props]) => ({ label, routingKey, body, properties: props }));

/** The services the broker delivers a routing key to. */
const consumersOf = (routingKey: string) => system.services.filter((service) => service.topology?.bindings.includes(routingKey)).map((service) => service.name);

// ---------------------------------------------------------------------------------------------

describe('fuzzing the running system', { timeout: 240_000 }, () => {
  test(`POST /orders, ${HTTP_RUNS} generated bodies and ${fixedCases.length} fixed ones: 202 exactly for the valid ones, otherwise a 4xx { error, message }, never a 5xx, all of an order or none`, async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype);
    const accepted: { orderId: string; sagaId: string; order: ExpectedOrder }[] = [];
    const statuses = new Map<number, number>();

    const check = async (testCase: HttpCase) => {
      const expected = verdict(testCase.text, testCase.contentType);
      // Strings PostgreSQL cannot store are a known bug with a test of their own below.
      fc.pre(!(expected.accepted && !expected.storable));
      const { status, body } = await post(testCase);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const context = `${testCase.label}: ${testCase.text.slice(0, 300)} → ${status} ${JSON.stringify(body).slice(0, 300)}`;
      expect(status, context).toBeLessThan(500);
      if (expected.accepted) {
        expect(status, context).toBe(202);
        expect(body, context).toMatchObject({ status: 'accepted', orderId: expect.any(String), sagaId: expect.any(String) });
        const { orderId, sagaId } = body as { orderId: string; sagaId: string };
        accepted.push({ orderId, sagaId, order: expected.order });
      } else {
        expect(status, context).toBeGreaterThanOrEqual(400);
        expect(body, context).toMatchObject({ error: expect.any(String), message: expect.any(String) });
      }
    };

    for (const testCase of fixedCases) await fc.assert(fc.asyncProperty(fc.constant(testCase), check), { numRuns: 1 });
    await fc.assert(fc.asyncProperty(httpCase, check), { numRuns: HTTP_RUNS });

    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Both kinds were tried in earnest.
    expect(accepted.length).toBeGreaterThan(HTTP_RUNS / 10);
    expect([...statuses.keys()].filter((status) => status >= 400).length).toBeGreaterThan(0);

    // Every 202 wrote a whole order (order row as requested, saga, OrderCreated in the outbox); nothing else wrote anything.
    const orders = await system.orderDb.selectFrom('orders').selectAll().execute();
    expect(orders).toHaveLength(accepted.length);
    const sagas = new Map((await system.orderDb.selectFrom('sagas').select(['saga_id', 'order_id']).execute()).map((row) => [row.order_id, row.saga_id]));
    const { rows: created } = await sql<{ order_id: string; n: number }>`select envelope->>'orderId' as order_id, count(*)::int as n from outbox where envelope->>'type' = 'OrderCreated' group by 1`.execute(system.orderDb);
    const createdCount = new Map(created.map((row) => [row.order_id, row.n]));
    for (const { orderId, sagaId, order: expected } of accepted) {
      const row = orders.find((candidate) => candidate.order_id === orderId);
      expect(row, `order ${orderId}`).toBeDefined();
      expect({ customerId: row!.customer_id, customerEmail: row!.customer_email, items: row!.items.map(({ sku, qty }) => ({ sku, qty })), amountMinor: Number(row!.amount_minor), currency: row!.currency }).toEqual(expected);
      expect(sagas.get(orderId)).toBe(sagaId);
      expect(createdCount.get(orderId), `OrderCreated rows of ${orderId}`).toBe(1);
    }
    expect(sagas.size).toBe(accepted.length);
    expect(created.length).toBe(accepted.length);
  });

  test('a body with a string PostgreSQL cannot store (U+0000, a lone surrogate) writes nothing, whatever it answers', async () => {
    const before = await system.orderDb.selectFrom('orders').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    for (const body of unstorableBodies) {
      const { status } = await post({ label: 'unstorable', text: JSON.stringify(body), contentType: 'application/json' });
      expect(status).not.toBe(202);
    }
    const after = await system.orderDb.selectFrom('orders').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  // PostgreSQL cannot store these strings (a text column cannot hold U+0000; jsonb refuses the escape of
  // a lone surrogate): the kit's HTTP layer refuses them before any handler runs.
  test('a body with U+0000 or a lone surrogate in a string answers 400 naming the field', async () => {
    for (const body of unstorableBodies) {
      const response = await post({ label: 'unstorable', text: JSON.stringify(body), contentType: 'application/json' });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
  });

  test(`${ENVELOPE_RUNS} generated envelopes no service can apply: each is dead-lettered by every service it reaches, with a reason; nothing is written; every service stays up`, async () => {
    const before = await quiescent();
    expect(await queues.list(serviceNames), 'dead letters from the HTTP fuzzing alone').toEqual([]);

    // One batch, so the run stays short; the seed in every failure message replays it.
    const seed = Date.now() | 0;
    const cases = fc.sample(envelopeCase, { numRuns: ENVELOPE_RUNS, seed }).map((testCase) => ({ ...testCase, messageId: v7() }));
    const connection = await amqp.connect(system.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      for (const testCase of cases) {
        channel.publish(system.exchange, testCase.routingKey, testCase.body, { ...testCase.properties, messageId: testCase.messageId, persistent: true });
      }
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }

    const expected = cases.flatMap((testCase) => consumersOf(testCase.routingKey).map((service) => ({ ...testCase, service })));
    const letters = await waitFor(
      async () => {
        const found = await queues.list(serviceNames);
        return found.length >= expected.length ? found : undefined;
      },
      { timeoutMs: 30_000, message: `${expected.length} dead letters (seed ${seed})` },
    );
    expect(letters).toHaveLength(expected.length);
    for (const { service, messageId, label, routingKey, body } of expected) {
      const letter = letters.find((candidate) => candidate.id === messageId && candidate.service === service);
      const context = `seed ${seed}: ${label} on ${routingKey} (${body.toString('utf8').slice(0, 200)}) in ${service}`;
      expect(letter, context).toBeDefined();
      expect(letter!.reason, context).not.toBe('');
      expect(letter!.routingKey, context).toBe(routingKey);
      expect(letter!.body.equals(body), context).toBe(true);
    }

    // Nothing was written anywhere (no business row, no inbox row, no outbox row).
    expect(await quiescent()).toEqual(before);

    // Every service still answers and the saga still works end to end.
    for (const service of system.services) expect((await fetch(`${service.url}/health`)).status, service.name).toBe(200);
    for (const service of system.services) expect((await fetch(`${service.url}/ready`)).status, service.name).toBe(200);
    const { orderId } = await placeOrder(system, order());
    expect(await settledOrder(system, orderId)).toMatchObject({ status: 'CONFIRMED' });
  });
});

describe('hostile headers', () => {
  // A foreign x-attempt (here a double below -2^63, which amqplib cannot re-encode as an integer) counts as
  // the first attempt and is never copied as it came: the message still reaches the dead-letter queue.
  test('a message whose x-attempt header is a double below -2^63 still reaches the dead-letter queue', async () => {
    const messageId = v7();
    const connection = await amqp.connect(system.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      channel.publish(system.exchange, 'payment.failed', Buffer.from('not an envelope'), { messageId, persistent: true, headers: { 'x-attempt': { '!': 'double', value: -1e30 } } });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    await waitFor(async () => (await queues.list(['order'])).some((letter) => letter.id === messageId), { timeoutMs: 5_000, message: 'the message in the order dead-letter queue' });
  });
});

const unstorableBodies = [
  { customerEmail: 'a@b.c', items: [{ sku: 'MOUSE', qty: 1 }], amount: '1.00', customerId: 'x\u0000y' },
  { customerEmail: 'a\u0000@b.c', items: [{ sku: 'MOUSE', qty: 1 }], amount: '1.00' },
  { customerEmail: 'a@b.c', items: [{ sku: 'MOUSE', qty: 1 }], amount: '1.00', customerId: 'x\ud800y' },
  { customerEmail: 'a\udc00@b.c', items: [{ sku: 'MOUSE', qty: 1 }], amount: '1.00' },
];
