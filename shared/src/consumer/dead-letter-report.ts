import type { ConsumeMessage } from 'amqplib';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { EventHandler } from './handler.ts';

/** What the consumer knows of a message it has just dead-lettered (confirmed by the broker). */
export interface DeadLetterDetails {
  reason: string;
  attempt: number;
  /** The handler that failed, or 'none' when no handler took the message. */
  handler: string;
}

/**
 * Logs and counts a dead letter. Every one is an error line and counts in dead_letters_total by
 * event type. One of a compensation handler also counts in compensations_dead_lettered_total and
 * gets a warning line of its own naming the order and the command that replays it: until then
 * the order keeps its charge or its stock stays held, and nothing else in the saga will notice.
 */
export function reportDeadLetter(
  kit: { logger: Logger; metrics?: Metrics | undefined; handlers: readonly Pick<EventHandler, 'name' | 'compensation'>[] },
  message: ConsumeMessage,
  { reason, attempt, handler }: DeadLetterDetails,
): void {
  const messageId = message.properties.messageId as string | undefined;
  const { type, orderId, sagaId } = identify(message);
  kit.logger.error({ messageId, type, orderId, sagaId, reason, attempt, handler }, 'message dead-lettered');
  kit.metrics?.messages.inc({ handler, outcome: 'dead_lettered' });
  kit.metrics?.deadLetters.inc({ type: type ?? 'unknown', handler });

  const compensation = handler !== 'none' && kit.handlers.some((candidate) => candidate.name === handler && candidate.compensation === true);
  if (!compensation) return;
  kit.metrics?.compensationsDeadLettered.inc({ type: type ?? 'unknown', handler });
  kit.logger.warn(
    { eventId: messageId, type, orderId, sagaId, handler, reason },
    `compensation dead-lettered: order ${orderId ?? '(unknown)'} keeps what ${handler} should have undone until it is replayed (npm run dlq -- replay ${messageId ?? '<id>'})`,
  );
}

/** The event type and the saga of a message, as far as its body says (a dead letter may be any bytes at all). */
function identify(message: ConsumeMessage): { type: string | undefined; orderId: string | undefined; sagaId: string | undefined } {
  let body: unknown;
  try {
    body = JSON.parse(message.content.toString('utf8'));
  } catch {
    body = undefined;
  }
  const field = (name: string) => {
    const value = (body as Record<string, unknown> | undefined)?.[name];
    return typeof value === 'string' ? value.slice(0, 200) : undefined;
  };
  const orderId = field('orderId');
  const sagaId = field('sagaId');
  const type = field('type');
  // An envelope names its type, order and saga; without them the body is not one, whatever it claims.
  return orderId && sagaId && type ? { type, orderId, sagaId } : { type: undefined, orderId, sagaId };
}
