import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import { switchedOff } from '../runtime/mechanisms.ts';

const PARAMETER = Symbol('reusable query parameter');

interface Placeholder {
  readonly [PARAMETER]: string;
}

function isPlaceholder(value: unknown): value is Placeholder {
  return typeof value === 'object' && value !== null && PARAMETER in value;
}

/** Stand-ins for every parameter: objects the query builder takes as plain values. */
function placeholders<P>(): P {
  return new Proxy({}, { get: (_target, key) => ({ [PARAMETER]: String(key) }) }) as P;
}

/**
 * A hot statement built and compiled by Kysely once, then run with new parameter values.
 * Building and compiling a query is most of the Node CPU a small statement costs, and the
 * statement's text never changes, so it is also prepared once per connection.
 *
 * `build` receives placeholders instead of values: use them only where a value goes (`=`,
 * `set`, `values`, `${}` in `sql`, `eb.val`), never where Kysely looks inside a value (an
 * `in` list or any array it expands; pass arrays whole, e.g. `= any(${params.ids})`). Every
 * compiled parameter must come from a placeholder or be a constant of the query.
 */
export function reusableQuery<DB, P extends Record<string, unknown>, R>(build: (db: Kysely<DB>, params: P) => Compilable<R>) {
  let compiled: CompiledQuery<R> | undefined;
  /** The statement with these values, to run or to send ahead. */
  const withValues = (db: Kysely<DB>, params: P): CompiledQuery<R> => {
    // KIT_WITHOUT=reusable-query: what the statement costs as a plain Kysely query, built with its values on every call.
    if (switchedOff('reusable-query')) return build(db, params).compile();
    compiled ??= build(db, placeholders<P>()).compile();
    const parameters = compiled.parameters.map((value) => (isPlaceholder(value) ? params[value[PARAMETER]] : value));
    return { ...compiled, parameters };
  };
  const run = (db: Kysely<DB>, params: P): Promise<QueryResult<R>> => db.executeQuery(withValues(db, params));
  return Object.assign(run, { compile: withValues });
}
