/**
 * Scenario: the mail server is unreachable for 60 s in the middle of a stream of orders (a
 * proxy in front of it is cut: open connections dropped, new ones refused). An outage is not
 * the emails' fault: they wait without spending attempts, and once the server is back every
 * confirmation and cancellation email arrives exactly once (counted by Message-ID at the
 * server), the notification dead-letter queue is empty, and the orders themselves are not
 * held up by it (the verdict's invariants, outcomes and settling).
 */
import { expect, test } from 'vitest';
import { startTcpProxy, waitFor } from '@checkout-saga/shared/testing';
import { sql } from 'kysely';
import { hold, runScenario } from './support/scenario.ts';
import { startSelectiveSmtp } from './support/smtp.ts';
import { startStream } from './support/stream.ts';
import { expectClean, judge } from './support/verdict.ts';

const ORDERS = 270;
const RATE = 3;
const OUTAGE_MS = 60_000;

test(
  'cut the mail server for 60 s mid-stream, then restore: every confirmation and cancellation email arrives exactly once, none is dead-lettered',
  async () => {
    const smtp = await startSelectiveSmtp(() => false);
    const link = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(smtp.url).port) });
    try {
      await runScenario('smtp-outage', { notification: { SMTP_URL: link.url(smtp.url), SMTP_TIMEOUT_MS: '5000' } }, async (system, events) => {
        const stream = startStream(system.orderUrl, { count: ORDERS, ratePerSecond: RATE, seed: 12, label: 'smtp' });
        await stream.waitAccepted(45);
        const mailedBefore = smtp.accepted();
        link.cut();
        // A send whose DATA was through when the link was cut may still be accepted by the server while its
        // connection closes, and its "250" never reaches the service: SMTP cannot tell, so the service sends it
        // again. Those (at most the sends in flight at the cut) may arrive twice; nothing may arrive after.
        await waitFor(() => smtp.openConnections() === 0, { message: "the mail server's connections closed by the cut" });
        const mailedAtCut = smtp.accepted();
        const inFlightAtCut = smtp.messageIds().slice(mailedBefore);
        events.mark(`mail server cut (${stream.accepted()} accepted, ${mailedAtCut} emails so far, ${inFlightAtCut.length} completing as it was cut)`);
        await hold(OUTAGE_MS); // the scenario: 60 s without a mail server
        const mailedDuring = smtp.accepted() - mailedAtCut;
        // What waiting out the outage cost: every failed send is a retry through the broker.
        const metrics = await (await fetch(`${system.services.notification.url}/metrics`)).text();
        const retried = metrics
          .split('\n')
          .filter((line) => line.startsWith('messages_total{') && line.includes('outcome="retried"'))
          .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
        events.mark(`${retried} sends retried during the outage`);
        const midStream = stream.started() < ORDERS;
        link.restore();
        events.mark(`mail server restored (${stream.accepted()} accepted)`);

        const verdict = await judge(system, 'mail server unreachable for 60 s', [stream], {
          findings: midStream ? [] : ['the stream had placed all its orders before the mail server came back: not mid-stream (make it longer)'],
        });
        expectClean(verdict);
        expect(mailedDuring, 'emails accepted while the mail server was cut').toBe(0);

        // One email per saga that ended: the OrderConfirmed or OrderCancelled the order service published.
        const finals = await system.orderDb
          .selectFrom('outbox')
          .select(sql<string>`envelope->>'eventId'`.as('eventId'))
          .where(sql<string>`envelope->>'type'`, 'in', ['OrderConfirmed', 'OrderCancelled'])
          .execute();
        const wanted = finals.map((row) => `<${row.eventId}@checkout-saga>`);
        expect(wanted.length, 'one final event per order').toBe(verdict.orders);
        const copies = new Map<string, number>();
        for (const id of smtp.messageIds()) copies.set(id, (copies.get(id) ?? 0) + 1);
        const missing = wanted.filter((id) => !copies.has(id));
        const twice = [...copies].filter(([id, count]) => count > (inFlightAtCut.includes(id) ? 2 : 1)).map(([id, count]) => `${id} x${count}`);
        const strangers = [...copies.keys()].filter((id) => !wanted.includes(id));
        console.log(`[faults smtp-outage] ${wanted.length} emails wanted, ${smtp.accepted()} accepted (${inFlightAtCut.length} completing as the link was cut); missing ${missing.length}, sent more than once ${twice.length}, unexpected ${strangers.length}`);
        expect(missing, 'emails never delivered').toEqual([]);
        expect(twice, 'emails delivered more than once').toEqual([]);
        expect(strangers, 'emails no saga asked for').toEqual([]);
      });
    } finally {
      await link.close();
      await smtp.close();
    }
  },
  300_000,
);
