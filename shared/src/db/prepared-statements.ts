import { createHash } from 'node:crypto';
import { switchedOff } from '../runtime/mechanisms.ts';

/** pg keeps a connection's prepared statements until it closes; past this many, texts go unnamed. */
export const NAMED_STATEMENTS_PER_CONNECTION = 200;
/** Texts this long are generated (multi-row inserts, long IN lists) and seldom repeat. */
export const MAX_NAMED_TEXT_LENGTH = 4096;

/**
 * The names of one connection's prepared statements. Every parameterised statement goes out
 * as a named prepared statement, so PostgreSQL parses and plans a text once per connection
 * instead of on every execution.
 */
export class StatementNames {
  private readonly names = new Map<string, string>();
  /** KIT_WITHOUT=prepared-statements: every text runs unnamed, parsed and planned on each execution. */
  private readonly unnamed = switchedOff('prepared-statements');

  /** The statement name for a text, or undefined when it should run unnamed. */
  nameOf(text: string): string | undefined {
    if (this.unnamed) return undefined;
    const known = this.names.get(text);
    if (known !== undefined) return known;
    if (this.names.size >= NAMED_STATEMENTS_PER_CONNECTION || text.length > MAX_NAMED_TEXT_LENGTH) return undefined;
    const name = `k${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    this.names.set(text, name);
    return name;
  }
}
