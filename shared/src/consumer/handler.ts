import type { Transaction } from 'kysely';
import type { Envelope } from '../contracts/envelope.ts';
import type { EventType } from '../contracts/events.ts';
import type { MessagingTables } from '../db/messaging-tables.ts';
import type { Logger } from '../logger.ts';

/**
 * What a handler gets: the event, its transaction, a way to emit events in it, and a logger
 * bound to the saga. Emitted events are written to the outbox when the handler returns, with
 * those of any other handler sharing the transaction, in one statement.
 */
export interface HandlerContext<DB extends MessagingTables, T extends EventType> {
  event: Envelope<T>;
  trx: Transaction<DB>;
  emit(events: Envelope | readonly Envelope[]): Promise<void>;
  /** In a transaction, its lines are written once the transaction commits, and dropped if it rolls back. */
  log: Logger;
  /**
   * Runs `work` once the transaction commits, never if it rolls back (a metric of what the
   * handler changed: a batch replayed message by message would count it twice otherwise).
   * Without a transaction, once the handler has returned.
   */
  afterCommit(work: () => void): void;
}

/**
 * One reaction of a service to one event type. `name` is the inbox key: it must stay
 * stable, because renaming it would make already-applied events look new.
 * A handler without a database (notification) sets `transactional: false`: it is
 * retried on failure but has no inbox, so its side effect must be idempotent downstream.
 * The consumer applies messages that arrive together in one transaction; a handler that waits
 * on the outside world inside its transaction sets `batch: false`, or the waits would add up.
 * A handler whose effect reaches outside its database (a card charge, an e-mail sent from a
 * transactional handler) sets `externalEffects: true`: like every handler it runs only once the
 * inbox has answered that its event is new, and it always runs in a transaction of its own
 * (implies `batch: false`), so no other message's failure rolls back a
 * transaction whose effect has already happened. The effect must still be idempotent downstream:
 * a commit that fails after it leaves the event to be delivered again.
 * A handler that undoes an earlier step of the saga (a refund, a stock release) sets
 * `compensation: true`: if its message is dead-lettered, the kit says so loudly (metric,
 * warning naming the order), since the customer keeps a charge or stock stays held until
 * someone replays it.
 */
export interface EventHandler<DB extends MessagingTables = MessagingTables, T extends EventType = EventType> {
  readonly name: string;
  readonly event: T;
  readonly transactional?: boolean;
  readonly batch?: boolean;
  readonly externalEffects?: boolean;
  readonly compensation?: boolean;
  handle(context: HandlerContext<DB, T>): Promise<void>;
}

/** Declares a handler with its event type inferred, so `context.event.payload` is typed. */
export function on<DB extends MessagingTables, T extends EventType>(
  event: T,
  name: string,
  handle: (context: HandlerContext<DB, T>) => Promise<void>,
  options: { transactional?: boolean; batch?: boolean; externalEffects?: boolean; compensation?: boolean } = {},
): EventHandler<DB, T> {
  return { event, name, handle, ...options };
}
