/**
 * The HTTP contract: each service serves an OpenAPI 3.1 document built from its routes' own
 * TypeBox schemas (GET /openapi.json) and a browsable page (GET /docs). Against the four
 * running services: every route is in the document with its status codes and the shared
 * error shape, every request example is accepted, and every response matches the schema
 * documented for its status.
 */
import { routesOf, type RunningService } from '@checkout-saga/shared/internal';
import { waitFor } from '@checkout-saga/shared/testing';
import { Errors } from 'typebox/schema';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSystem, type System } from './support/system.ts';

type Json = Record<string, any>;

interface Operation {
  method: string;
  path: string;
  operation: Json;
}

let system: System;
const documents = new Map<string, { service: RunningService; document: Json }>();

beforeAll(async () => {
  system = await startSystem('openapi', { dashboard: true });
  for (const service of system.services) {
    if (documents.has(service.name)) continue; // a scaled service's instances serve the same document
    const response = await fetch(`${service.url}/openapi.json`);
    expect(response.status).toBe(200);
    documents.set(service.name, { service, document: (await response.json()) as Json });
  }
});

afterAll(async () => {
  await system?.stop();
});

const serviceNames = ['order', 'payment', 'inventory', 'notification'] as const;

function operationsOf(document: Json): Operation[] {
  return Object.entries(document.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, operation]) => ({ method: method.toUpperCase(), path, operation: operation as Json })),
  );
}

/** Inlines `#/components/schemas/X` references, so a schema can be checked on its own. */
function inline(schema: unknown, document: Json): any {
  if (Array.isArray(schema)) return schema.map((item) => inline(item, document));
  if (typeof schema !== 'object' || schema === null) return schema;
  const { $ref, ...rest } = schema as Json;
  const target = typeof $ref === 'string' ? inline(document.components.schemas[$ref.replace('#/components/schemas/', '')], document) : {};
  return { ...target, ...Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, inline(value, document)])) };
}

function schemaErrors(schema: unknown, value: unknown): string[] {
  const [, errors] = Errors(schema as never, value);
  return errors.map((error) => `${error.instancePath || '(root)'} ${error.message}`);
}

function exampleOf(parameter: Json): unknown {
  return parameter.example ?? parameter.schema?.examples?.[0];
}

/** The request the document's examples describe, or why it cannot be built. */
function exampleRequest({ path, operation }: Operation): { url: string; init: RequestInit } | { missing: string } {
  let url = path;
  const query = new URLSearchParams();
  const headers: Record<string, string> = {};
  for (const parameter of (operation.parameters ?? []) as Json[]) {
    const example = exampleOf(parameter);
    if (example === undefined) {
      if (parameter.required) return { missing: `${parameter.in} parameter ${parameter.name}` };
      continue;
    }
    if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(String(example)));
    if (parameter.in === 'query') query.set(parameter.name, String(example));
  }
  let body: string | undefined;
  if (operation.requestBody) {
    const example = operation.requestBody.content?.['application/json']?.example;
    if (example === undefined) return { missing: 'request body' };
    body = JSON.stringify(example);
    headers['content-type'] = 'application/json';
  }
  const search = query.size ? `?${query}` : '';
  return { url: `${url}${search}`, init: { headers, ...(body === undefined ? {} : { body }) } };
}

/** The response checked against what the document says for its status. */
async function checkResponse(document: Json, { method, path, operation }: Operation, response: Response): Promise<string[]> {
  const documented = operation.responses[String(response.status)];
  if (!documented) return [`${method} ${path} answered ${response.status}, which it does not document (it documents ${Object.keys(operation.responses).join(', ')})`];
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const media = documented.content?.[contentType];
  if (!media) return [`${method} ${path} ${response.status} answered ${contentType}, documented as ${Object.keys(documented.content ?? {}).join(', ') || 'no content'}`];
  const headerProblems = Object.entries((documented.headers ?? {}) as Json).flatMap(([name, header]) => {
    const value = response.headers.get(name);
    return value === null ? [] : schemaErrors(header.schema, value).map((error) => `${method} ${path} ${response.status} header ${name}: ${error}`);
  });
  if (headerProblems.length) return headerProblems;
  if (contentType === 'text/event-stream') {
    await response.body?.cancel();
    return [];
  }
  const text = await response.text();
  const value = contentType === 'application/json' ? JSON.parse(text) : text;
  return schemaErrors(inline(media.schema, document), value).map((error) => `${method} ${path} ${response.status}: ${error} in ${text.slice(0, 300)}`);
}

describe.each(serviceNames)('the %s service', (name) => {
  test('serves an OpenAPI 3.1 document with every route it has, each with a success status and the error shape', () => {
    const { service, document } = documents.get(name)!;
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(document.components.schemas.ErrorBody).toMatchObject({ type: 'object', required: ['error', 'message'] });

    const documented = new Set(operationsOf(document).map(({ method, path }) => `${method} ${path}`));
    const routes = routesOf(service.app).filter((route) => route.method !== 'HEAD');
    const problems: string[] = [];
    for (const route of routes) {
      const key = `${route.method} ${route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`;
      // Only the documentation's own routes and the page's static files may stay out of it.
      const mayHide = route.url === '/openapi.json' || route.url.startsWith('/docs') || /\/[^/]+\.[a-z0-9]+$/i.test(route.url);
      if (route.hidden) {
        if (!mayHide) problems.push(`${key} is hidden from the document`);
      } else if (!documented.has(key)) {
        problems.push(`${key} is not in the document`);
      }
    }
    for (const { method, path, operation } of operationsOf(document)) {
      const statuses = Object.keys(operation.responses);
      if (!statuses.some((status) => status.startsWith('2'))) problems.push(`${method} ${path} documents no success status`);
      if (!statuses.includes('500')) problems.push(`${method} ${path} does not document 500`);
      if ((operation.parameters?.length || operation.requestBody) && !statuses.includes('400')) problems.push(`${method} ${path} takes input but does not document 400`);
      for (const status of statuses.filter((code) => Number(code) >= 400)) {
        const json = operation.responses[status].content?.['application/json'];
        // /ready's 503 is its readiness report, not a failure; the page's 503 is plain text telling how to build it.
        if (`${method} ${path} ${status}` === 'GET /ready 503' || `${method} ${path} ${status}` === 'GET / 503') continue;
        if (json?.schema?.$ref !== '#/components/schemas/ErrorBody') problems.push(`${method} ${path} ${status} is not documented as ErrorBody`);
      }
    }
    expect(problems).toEqual([]);
    expect(routes.length).toBeGreaterThan(0);
  });

  test("answers every documented operation's example request with a documented status and a body that matches its schema", async () => {
    const { service, document } = documents.get(name)!;
    // Writes first, so the reads after them find what they wrote.
    const operations = operationsOf(document).sort((a, b) => Number(a.method === 'GET') - Number(b.method === 'GET'));
    const problems: string[] = [];
    for (const operation of operations) {
      const request = exampleRequest(operation);
      if ('missing' in request) {
        problems.push(`${operation.method} ${operation.path} has no example for its ${request.missing}`);
        continue;
      }
      const response = await fetch(`${service.url}${request.url}`, { method: operation.method, ...request.init });
      if ([400, 413, 500].includes(response.status)) {
        problems.push(`${operation.method} ${request.url} refused its own example: ${response.status} ${await response.text()}`);
        continue;
      }
      problems.push(...(await checkResponse(document, operation, response)));
    }
    expect(problems).toEqual([]);
  });

  test('serves a browsable page at /docs whose assets come from the service itself', async () => {
    const { service } = documents.get(name)!;
    const page = await fetch(`${service.url}/docs/`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // The page may load only the service's own files: no CDN, which a machine without internet could not reach anyway.
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/https:/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\/(?!localhost)/);
    const scripts = [...html.matchAll(/src="\.?\/?([^"]+\.js)"/g)].map((match) => match[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) {
      const asset = await fetch(new URL(script, `${service.url}/docs/`));
      expect(asset.status, script).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, script).toBeGreaterThan(0);
    }
  });
});

test('an order placed with the example body reads back, with its saga and payment, as their documented 200 schemas say', async () => {
  const order = documents.get('order')!.document;
  const payment = documents.get('payment')!.document;
  const example = order.paths['/orders'].post.requestBody.content['application/json'].example;
  const placed = await fetch(`${system.orderUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(example) });
  expect(placed.status).toBe(202);
  expect(Object.keys(order.paths['/orders'].post.responses['202'].headers)).toContain('location');
  expect(placed.headers.get('location')).toMatch(/^\/orders\//);
  const { orderId, sagaId } = (await placed.json()) as { orderId: string; sagaId: string };
  await waitFor(async () => ((await (await fetch(`${system.orderUrl}/orders/${orderId}`)).json()) as { status: string }).status !== 'PENDING', {
    message: `order ${orderId} to settle`,
  });

  const reads: [Json, Operation, string][] = [
    [order, { method: 'GET', path: '/orders/{orderId}', operation: order.paths['/orders/{orderId}'].get }, `${system.orderUrl}/orders/${orderId}`],
    [order, { method: 'GET', path: '/orders', operation: order.paths['/orders'].get }, `${system.orderUrl}/orders`],
    [order, { method: 'GET', path: '/sagas/{sagaId}', operation: order.paths['/sagas/{sagaId}'].get }, `${system.orderUrl}/sagas/${sagaId}`],
    [payment, { method: 'GET', path: '/payments/{orderId}', operation: payment.paths['/payments/{orderId}'].get }, `${system.paymentUrl}/payments/${orderId}`],
  ];
  for (const [document, operation, url] of reads) {
    const response = await fetch(url);
    expect(response.status, url).toBe(200);
    expect(await checkResponse(document, operation, response)).toEqual([]);
  }
});
