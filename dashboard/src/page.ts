import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { HttpApp } from '@checkout-saga/shared';

/*
 * GET /: the dashboard page, as `npm run build:web` (vite) builds it into dashboard/web/dist.
 * The image copies that folder to dist/web beside the bundled order service.
 */

export const NOT_BUILT_MESSAGE = 'The dashboard page is not built. Run `npm run build:web` (npm start and the Docker image do it for you), then restart the order service.\n';

/** Where the built page is: beside the sources (npm start, tests) or beside the bundle (the image). */
export function pageRoot(): string | undefined {
  const candidates = [new URL('../web/dist/', import.meta.url), new URL('./web/', import.meta.url)].map((url) => fileURLToPath(url));
  return candidates.find((dir) => existsSync(join(dir, 'index.html')));
}

// The page loads only its own script, styles and data.
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** GET / and the page's assets from `root`; without a built page (root undefined), GET / answers 503 with how to build it. */
export function pageRoutes(app: HttpApp, root: string | undefined): void {
  if (root) {
    // One route per file that exists now (no wildcard), so every other path keeps its JSON 404.
    void app.register(fastifyStatic, {
      root,
      prefix: '/',
      wildcard: false,
      index: false,
      setHeaders(reply, path) {
        // Vite puts a content hash in every asset's name; index.html must be looked at again each time.
        reply.header('cache-control', /[/\\]assets[/\\]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  }
  const pageSchema = {
    summary: 'The dashboard page',
    noDatabase: true,
    response: {
      200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } },
      503: { description: 'The page is not built (npm run build:web)', content: { 'text/plain': { schema: { type: 'string' } } } },
    },
  };
  app.get('/', { schema: pageSchema }, async (_request, reply) => {
    if (!root) return reply.status(503).type('text/plain; charset=utf-8').send(NOT_BUILT_MESSAGE);
    return reply.header('cache-control', 'no-cache').header('content-security-policy', CONTENT_SECURITY_POLICY).sendFile('index.html');
  });
}
