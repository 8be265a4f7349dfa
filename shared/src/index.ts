/*
 * The kit's front door: everything a service author needs, and nothing else. A service
 * (services/<name>/src) imports only this entry, which eslint enforces:
 *
 * - defining and running a service: ServiceDefinition (handlers, routes, workers, retention),
 *   the ServiceContext each part is given, messagingSettings for its environment,
 *   configOrExit and runService for its main.ts, and GroupCommit to accept requests together;
 * - events and contracts: newEvent, the Envelope and its payloads, the catalogue's shared
 *   schemas, and continueTrace for a trace that starts at an HTTP request;
 * - handlers: `on`, and the Outbox for work outside a handler (a worker, an HTTP route);
 * - money: integer minor units, read from and formatted as decimal text;
 * - errors: what a handler throws to say which failures spend an attempt, and HttpError;
 * - HTTP: the app type and the error responses every route documents.
 *
 * The kit's own plumbing (database pool and driver, broker, relay, consumer, topology,
 * migrations) is on '@checkout-saga/shared/internal', for the kit itself, its tests, bench/
 * and scripts/. See docs/design.md, "The kit".
 */

// Defining and running a service
export { runService, configOrExit } from './runtime/run.ts';
export type { ServiceDefinition, ServiceContext, Worker } from './runtime/service.ts';
export { messagingSettings } from './config/messaging-settings.ts';
export type { MessagingTables } from './db/messaging-tables.ts';
export type { Logger } from './logger.ts';
export type { Metrics } from './metrics.ts';
export { GroupCommit, type Committed } from './runtime/group-commit.ts';

// Events and contracts
export { newEvent, type Envelope } from './contracts/envelope.ts';
export { Currency, currencies, OrderLine, CancellationReason, InventoryFailureReason, type EventPayload } from './contracts/events.ts';
export { continueTrace } from './contracts/trace.ts';

// Handlers
export { on, type HandlerContext } from './consumer/handler.ts';
export type { Outbox } from './outbox/outbox.ts';

// Money
export { formatMinor, parseAmount, readAmount } from './contracts/money.ts';

// Errors
export { PermanentFailure, InfrastructureFailure, classifyFailure } from './consumer/failure.ts';
export { HttpError, type HttpApp } from './http/server.ts';
export { errorResponses } from './http/openapi.ts';
