# One image for all four services and the migrator; the command picks the process:
#   node dist/order.js | dist/payment.js | dist/inventory.js | dist/notification.js | dist/migrate.js
# docker-compose.yml runs each of them from this file.
#
# No `# syntax=` line: it makes BuildKit fetch a frontend image from a registry before anything
# else, which fails offline or behind a mirror; the built-in frontend supports RUN --mount.
#
# Build arguments:
#   NODE_IMAGE  the base image of both stages (a mirror's copy, or a local stand-in)
# Build secret (optional, leaves nothing in the image):
#   npm_ca      a PEM bundle npm should trust for HTTPS, for a registry behind a TLS-inspecting
#               proxy: docker build --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt .

# Node 22 is the oldest line the dependency tree supports (package.json engines: ^22.12 || >=24).
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- deps: every dependency (dev included), cached until a package.json or the lock changes
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/order/package.json services/order/
COPY services/payment/package.json services/payment/
COPY services/inventory/package.json services/inventory/
COPY services/notification/package.json services/notification/
COPY dashboard/package.json dashboard/
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
    && npm ci --no-audit --no-fund

# ---- build: bundle each process into dist/ and build the dashboard page (typechecking,
# tests and benches are CI's work: .dockerignore leaves them out of the context)
FROM deps AS build
COPY . .
RUN npm run build && npm run build:web

# ---- runtime: production dependencies, the bundles and the migrations; no sources, no compiler
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/order/package.json services/order/
COPY services/payment/package.json services/payment/
COPY services/inventory/package.json services/inventory/
COPY services/notification/package.json services/notification/
COPY dashboard/package.json dashboard/
# --ignore-scripts: no production dependency has an install script, so none may run here.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
    && npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY database/migrations database/migrations
COPY --from=build /app/dist dist
# The dashboard page the order service serves at GET / (it looks for it beside dist/order.js).
COPY --from=build /app/dashboard/web/dist dist/web

USER node
EXPOSE 3000 3001 3002 3003
# Slim images have no curl: ask Node. Tries $PORT, or the service ports when PORT is unset
# (each service has its own default), so `docker run IMAGE node dist/payment.js` is checked too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "const ports = process.env.PORT ? [process.env.PORT] : [3000, 3001, 3002, 3003]; Promise.any(ports.map((port) => fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) }).then((response) => { if (!response.ok) throw new Error(String(response.status)); }))).then(() => process.exit(0), () => process.exit(1));"]
# tini is PID 1: it forwards SIGTERM to Node (graceful shutdown) and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/order.js"]
