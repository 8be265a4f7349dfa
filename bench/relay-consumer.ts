/**
 * The consuming service of `bench/relay.ts`, run as its own process (as it would be
 * deployed): `startService` with one OrderCreated handler that does nothing but the kit's
 * inbox transaction. It reports to its parent, over IPC, the moment each event's
 * transaction committed, on a clock both processes share (timeOrigin + now).
 *
 * Settings come from the environment like any service's (DATABASE_URL, RABBITMQ_URL,
 * ORDER_EXCHANGE, QUEUE_PREFIX, ...).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import { configOrExit, messagingSettings, on, startService, type MessagingTables } from '@checkout-saga/shared/internal';

export type ConsumerReport = { type: 'ready' } | { type: 'handled'; events: [eventId: string, at: number][] };

const clock = () => performance.timeOrigin + performance.now();
const send = (report: ConsumerReport) => process.send?.(report);

const config = configOrExit(messagingSettings('payment', 0));
const inTransaction = new AsyncLocalStorage<string[]>();
let pending: [string, number][] = [];
const flush = () => {
  if (pending.length === 0) return;
  send({ type: 'handled', events: pending });
  pending = [];
};
setInterval(flush, 10).unref();

const service = await startService<MessagingTables, typeof config>(
  {
    name: 'payment',
    handlers: ({ outbox }) => {
      // The consumer runs every handler in outbox.transaction: note what committed, and when.
      const transaction = outbox.transaction.bind(outbox);
      outbox.transaction = async <T>(work: (trx: Transaction<MessagingTables>) => Promise<T>): Promise<T> => {
        const events: string[] = [];
        const result = await inTransaction.run(events, () => transaction(work));
        const at = clock();
        for (const eventId of events) pending.push([eventId, at]);
        if (pending.length >= 500) flush();
        return result;
      };
      return [on('OrderCreated', 'bench.handle', async ({ event }) => void inTransaction.getStore()?.push(event.eventId))];
    },
  },
  config,
);
send({ type: 'ready' });

process.once('SIGTERM', () => {
  void service.stop().finally(() => {
    flush();
    process.exit(0);
  });
});
