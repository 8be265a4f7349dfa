import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifySchema } from 'fastify';
import { Type, type TSchema } from 'typebox';
import type { HttpApp } from './server.ts';

/** ErrorBody as a schema: every 4xx and 5xx a route documents points at it. */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.String({ description: 'A stable code: validation_failed, not_found, invalid_json, payload_too_large, unavailable, internal_error, ...' }),
    message: Type.String({ description: 'A sentence for people, naming the field where there is one' }),
    details: Type.Optional(Type.Unknown({ description: 'What the failure is about, where there is more to say' })),
  },
  { $id: 'ErrorBody', description: 'The one shape of every error body' },
);

/** An error response with its reason, for a route's `response` schema. */
export function errorResponse(description: string, headers?: Record<string, TSchema>): TSchema {
  return Type.Ref('ErrorBody', { description, ...(headers ? { headers } : {}) });
}

/**
 * The error responses a route declares itself (404 for its own lookups, 409, 401...). Every
 * route also gets, from the kit, the errors the kit itself answers with: 400 when it has any
 * request schema, 413 when it takes a body, 500, and 503 unless the route says `noDatabase`.
 */
export function errorResponses<const Declared extends Record<number, string>>(declared: Declared): { [Status in keyof Declared]: TSchema } {
  // Keyed by the declared statuses, so a handler may answer `reply.status(503)` where the route declares 503.
  return Object.fromEntries(Object.entries(declared).map(([status, description]) => [status, errorResponse(description)])) as { [Status in keyof Declared]: TSchema };
}

/** The statuses the kit's error handler answers with for a route of this schema (see createHttpApp). */
function kitErrors(schema: FastifySchema & { noDatabase?: boolean }): Record<number, TSchema> {
  const errors: Record<number, TSchema> = {};
  if (schema.body || schema.params || schema.querystring || schema.headers) {
    errors[400] = errorResponse('The request does not match its schema (the message names the field), or its JSON is malformed');
  }
  if (schema.body) errors[413] = errorResponse('The body is over the size limit');
  errors[500] = errorResponse('An unexpected failure; the service log has it');
  if (!schema.noDatabase) {
    errors[503] = errorResponse("The service's database is unavailable; retry shortly", { 'retry-after': Type.String({ description: 'Seconds to wait before retrying' }) });
  }
  return errors;
}

const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export interface ApiDocsOptions {
  title: string;
  description?: string;
  version: string;
}

/**
 * Serves the OpenAPI 3.1 document built from the routes' own TypeBox schemas at
 * GET /openapi.json, and a browsable page at GET /docs (swagger-ui, whose assets ship inside
 * the npm package, so the page works without internet). Must be awaited before any route is
 * added: the document lists the routes added after it.
 */
export async function serveApiDocs(app: HttpApp, options: ApiDocsOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, version: options.version, ...(options.description ? { description: options.description } : {}) },
    },
    // Shared schemas keep their $id as their component name (ErrorBody), not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: ({ schema, url }) => {
      const own = (schema ?? {}) as FastifySchema & { noDatabase?: boolean; response?: Record<string, unknown> };
      const { noDatabase: _noDatabase, ...rest } = own;
      return { schema: { ...rest, response: { ...kitErrors(own), ...own.response } } as FastifySchema, url };
    },
  });
  // Only this service's own files (no CDN); swagger-ui sets a few styles inline as it renders.
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
