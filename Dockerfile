# syntax=docker/dockerfile:1
#
# One image for all four services and the migrator; the command picks the process:
#   node dist/order.js | dist/payment.js | dist/inventory.js | dist/notification.js | dist/migrate.js
# docker-compose.yml runs each of them from this file.

ARG NODE_VERSION=22

# ---- deps: every dependency (dev included), cached until a package.json or the lock changes
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/order/package.json services/order/
COPY services/payment/package.json services/payment/
COPY services/inventory/package.json services/inventory/
COPY services/notification/package.json services/notification/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund

# ---- build: typecheck the whole tree, then bundle each process into dist/ and build the dashboard page
FROM deps AS build
COPY . .
RUN npm run typecheck && npm run build && npm run build:web

# ---- runtime: production dependencies, the bundles and the migrations; no sources, no compiler
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/order/package.json services/order/
COPY services/payment/package.json services/payment/
COPY services/inventory/package.json services/inventory/
COPY services/notification/package.json services/notification/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund
COPY database/migrations database/migrations
COPY --from=build /app/dist dist
# The dashboard page the order service serves at GET / (it looks for it beside dist/order.js).
COPY --from=build /app/services/order/web/dist dist/web

USER node
EXPOSE 3000 3001 3002 3003
# Slim images have no curl: ask Node. Tries $PORT, or the service ports when PORT is unset
# (each service has its own default), so `docker run IMAGE node dist/payment.js` is checked too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "const ports = process.env.PORT ? [process.env.PORT] : [3000, 3001, 3002, 3003]; Promise.any(ports.map((port) => fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) }).then((response) => { if (!response.ok) throw new Error(String(response.status)); }))).then(() => process.exit(0), () => process.exit(1));"]
# tini is PID 1: it forwards SIGTERM to Node (graceful shutdown) and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/order.js"]
