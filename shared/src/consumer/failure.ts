/** What kind of failure a handler error is: it decides whether the message spends one of its attempts. */
export type FailureKind = 'infrastructure' | 'conflict' | 'permanent' | 'handler';

/**
 * Thrown by a handler for a message that no retry can fix (it names a saga this service
 * never saw, say): the message goes to the dead-letter queue at once, with this reason.
 */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
}

/**
 * Thrown by a handler whose dependency cannot be reached (its mail server, say): the message
 * is fine, so, as with a database outage, it comes back after a delay without spending one of
 * its attempts. Only for failures that say nothing about the message itself.
 */
export class InfrastructureFailure extends Error {
  override name = 'InfrastructureFailure';
}

// Connection-level failures of PostgreSQL: the message is fine, the database is not reachable.
const infrastructureCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
const infrastructureMessages = /connection terminated|timeout exceeded when trying to connect|client has encountered a connection error|connection ended|terminating connection/i;

export function classifyFailure(error: unknown): FailureKind {
  if (error instanceof PermanentFailure) return 'permanent';
  if (error instanceof InfrastructureFailure) return 'infrastructure';
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if (code === '40001' || code === '40P01') return 'conflict';
  if (code && (infrastructureCodes.has(code) || code.startsWith('08'))) return 'infrastructure';
  if (message && infrastructureMessages.test(message)) return 'infrastructure';
  return 'handler';
}

export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}
