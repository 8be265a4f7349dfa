import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import type { Logger } from '../logger.ts';
import { classifyFailure } from '../consumer/failure.ts';
import { validationFailed } from './validation-error.ts';

export type HttpApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

export const MAX_BODY_BYTES = 1024 * 1024;

/** The one shape of every error body: a stable code, a sentence for people, and details where there are some. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The path of the first string in `value` that PostgreSQL cannot store as text, if any. */
function unstorableString(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null || depth > 32) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const found = unstorableString(child, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * A fastify server whose every failure answers with ErrorBody: schema violations name the
 * field (400), malformed JSON is a 400, an oversized body a 413, an unknown route a 404.
 */
export function createHttpApp(logger: Logger): HttpApp {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox checks bodies exactly as JSON typed them (null never becomes 0, nor 42 "42") and
  // converts only params, querystrings and headers, which arrive as text.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  // PostgreSQL text cannot hold NUL or half a surrogate pair: refuse them here, naming the field, not with a 500 at insert.
  app.addHook('preValidation', async (request) => {
    const field = unstorableString(request.body, 'body');
    if (field) throw new HttpError(400, 'validation_failed', `${field} must not contain NUL characters or unpaired surrogates`, [{ path: field }]);
  });

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      return reply.status(error.statusCode).send({ error: error.code, message: error.message, details: error.details } satisfies ErrorBody);
    }
    if (error.validation) {
      const failure = validationFailed(error);
      return reply.status(400).send({ error: failure.code, message: failure.message, details: failure.details } satisfies ErrorBody);
    }
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.status(413).send({ error: 'payload_too_large', message: `request body exceeds ${MAX_BODY_BYTES} bytes` });
    if (status >= 400 && status < 500) {
      const code = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError ? 'invalid_json' : 'bad_request';
      return reply.status(status).send({ error: code, message: error.message } satisfies ErrorBody);
    }
    if (classifyFailure(error) === 'infrastructure') {
      // The database is away: a retry later can succeed. If the connection failed around a COMMIT, the change may
      // have been written all the same; a route for which that matters answers for itself (POST /orders).
      return reply.status(503).header('retry-after', '1').send({ error: 'unavailable', message: 'the database is unavailable; retry shortly' } satisfies ErrorBody);
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ error: 'internal_error', message: 'internal error; see the service log' } satisfies ErrorBody);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` } satisfies ErrorBody),
  );
  return app;
}
