import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs to stdout; one base logger per service, children bind sagaId/orderId/eventId while a message is handled.
 * `destination` replaces stdout, for a tool whose log lines must stay in order with what else it prints
 * (pino's own stdout writer is asynchronous, so a line written by hand could overtake them).
 */
export function createLogger(service: string, level = 'info', destination?: DestinationStream): Logger {
  const options = { name: service, level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
