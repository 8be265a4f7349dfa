import type { Bindings } from 'pino';
import type { Logger } from '../logger.ts';

const LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

type LogMethod = (...args: unknown[]) => void;

/**
 * The log lines of one transaction's handlers, written only once it commits. A handler's
 * lines say what it did ("stock reserved"), and a transaction that rolls back did nothing:
 * a batch replayed message by message, a conflict run again. Without this, each of those would
 * log the same change twice.
 *
 * Lines are formatted when released, so a handler must not change an object after logging it.
 */
export class HeldLogLines {
  private lines: (() => void)[] = [];

  /** `log`, with its lines (and its children's) held here until `release`. */
  hold(log: Logger): Logger {
    return new Proxy(log, {
      get: (target, property) => {
        if (typeof property === 'string' && LEVELS.has(property)) {
          const write = (target as unknown as Record<string, LogMethod>)[property]!;
          return (...args: unknown[]) => {
            if (target.isLevelEnabled(property)) this.lines.push(() => write.apply(target, args));
          };
        }
        if (property === 'child') return (bindings: Bindings) => this.hold(target.child(bindings));
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as LogMethod).bind(target) : value;
      },
    });
  }

  /** Holds `work` with the lines, to run when they are written: what a handler does after its transaction commits. */
  defer(work: () => void): void {
    this.lines.push(() => {
      try {
        work();
      } catch {
        // The transaction has committed: a failing metric must not turn the message into a retry that applies nothing.
      }
    });
  }

  /** Writes the held lines (and runs deferred work), in the order they came. */
  release(): void {
    const lines = this.lines;
    this.lines = [];
    for (const line of lines) line();
  }
}
