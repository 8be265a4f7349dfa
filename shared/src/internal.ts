/*
 * The kit's plumbing, for the kit itself, its tests, bench/ and scripts/: services import the
 * front door ('@checkout-saga/shared', index.ts) only. Everything of the front door is here too.
 */
export * from './index.ts';
export * from './config/index.ts';
export { createLogger } from './logger.ts';
export { createDatabase, type Database } from './db/database.ts';
export { sendAhead, type SentAhead } from './db/pipelined-driver.ts';
export { SerialBatches } from './runtime/serial-batches.ts';
export type { OutboxTable, ProcessedEventsTable } from './db/messaging-tables.ts';
export { ensureDatabase, migrateDatabase, migrationsRoot } from './db/migrate.ts';
export * from './contracts/events.ts';
export { traceIdOf } from './contracts/trace.ts';
export { parseEnvelope, EnvelopeHeader, type Causation, type ParseResult } from './contracts/envelope.ts';
export { MAX_AMOUNT_MINOR, type AmountResult } from './contracts/money.ts';
export { Broker, type BrokerAttachment } from './broker/broker.ts';
export { ConfirmPublisher, type OutboundMessage, type PublishOutcome } from './broker/confirm-publisher.ts';
export { declareTopology, serviceTopology, type ServiceTopology } from './broker/topology.ts';
export { Outbox, OUTBOX_NOTIFY_CHANNEL, type OutboxEntry, type OutboxMessage, type OutboxOptions } from './outbox/outbox.ts';
export { OutboxRelay, type RelayOptions } from './outbox/relay.ts';
export { claimEvent, claimEvents, type InboxKey } from './inbox/inbox.ts';
export { Consumer, Headers, type ConsumerOptions } from './consumer/consumer.ts';
export type { EventHandler } from './consumer/handler.ts';
export { describeError } from './consumer/failure.ts';
export { createMetrics } from './metrics.ts';
export { createHttpApp, MAX_BODY_BYTES, routesOf, type ErrorBody, type RouteEntry } from './http/server.ts';
export { ErrorBodySchema, errorResponse, serveApiDocs, type ApiDocsOptions } from './http/openapi.ts';
export { startService, type RunningService } from './runtime/service.ts';
export { RetentionJanitor, type RetentionRule } from './runtime/retention.ts';
export type { GroupCommitOptions } from './runtime/group-commit.ts';
