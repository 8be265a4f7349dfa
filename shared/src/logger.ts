import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout; one base logger per service, children bind sagaId/orderId/eventId while a message is handled. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ name: service, level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}
