import { CompiledQuery, type DatabaseConnection, type Driver, type Kysely, type QueryResult, type TransactionSettings } from 'kysely';
import type pg from 'pg';
import { StatementNames } from './prepared-statements.ts';

/*
 * Kysely's PostgreSQL driver, rebuilt around the round trip. A transaction of a handler is a
 * handful of small statements, and on a machine shared by the services and the database each
 * round trip wakes two processes: most of a step's latency is waiting, not work. So the
 * connection (a pg client in pipeline mode) writes statements without waiting for the answer
 * to the one before whenever nothing depends on that answer:
 *
 * - BEGIN is held back and written together with the transaction's first statement;
 * - a statement given to `sendAhead` is written at once and the transaction goes on; its
 *   result arrives by the promise sendAhead returns, and COMMIT, written right behind the
 *   statements still on their way, fails with their error if any of them failed.
 *
 * PostgreSQL runs a connection's statements in the order written, and a failed statement
 * aborts the transaction, so the statements behind it fail and COMMIT rolls back: nothing of
 * a transaction with a failed statement is ever committed.
 */

const EMPTY_RESULT: QueryResult<never> = { rows: [] };

/** SQLSTATE 25P02: a statement refused because an earlier one failed. The earlier failure is the one to report. */
const IN_FAILED_TRANSACTION = '25P02';

interface Pending {
  resolve(result: QueryResult<unknown>): void;
  reject(error: unknown): void;
}

/** Statements handed to sendAhead, until their connection writes them. */
const sentAhead = new WeakMap<CompiledQuery, Pending>();

/** A statement written ahead: its answer, still to come. */
export interface SentAhead<R> {
  readonly result: Promise<QueryResult<R>>;
}

/**
 * Writes `query` in the executor's transaction without waiting for its answer: resolves once
 * the statement is written, with its result to come. The transaction goes on meanwhile, its
 * next statements written behind this one, and its COMMIT fails if this statement did.
 * Outside a transaction the statement simply runs.
 *
 * For statements whose result decides nothing until later (the inbox claim, checked once the
 * handlers ran) or nothing at all (the outbox insert, a saga's transition). Await sendAhead
 * itself before the transaction ends: COMMIT must be written after the statement.
 */
export async function sendAhead<R>(executor: Pick<Kysely<unknown>, 'executeQuery'>, query: CompiledQuery<R>): Promise<SentAhead<R>> {
  const result = new Promise<QueryResult<R>>((resolve, reject) => sentAhead.set(query, { resolve: resolve as Pending['resolve'], reject }));
  // Nobody may be listening when it fails (a statement whose result nothing needs): COMMIT reports it.
  result.catch(() => {});
  await executor.executeQuery(query);
  return { result };
}

/** One pg client of the pool, in pipeline mode, with its prepared statements and the state of its transaction. */
class PipelinedConnection implements DatabaseConnection {
  private readonly names = new StatementNames();
  /** BEGIN (or START TRANSACTION …) not yet written: it goes out with the first statement. */
  private pendingBegin: string | undefined;
  private inTransaction = false;
  /** Answers of this transaction's statements that nobody waited for yet. */
  private readonly unanswered = new Set<Promise<unknown>>();
  /** The first of them to fail: what the transaction reports. */
  private failure: { error: unknown } | undefined;
  /** Set when the connection cannot be used again; the pool then discards it. */
  private stale: Error | undefined;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly pipelining: boolean,
  ) {}

  async begin(statement: string): Promise<void> {
    this.inTransaction = true;
    this.failure = undefined;
    if (this.pipelining) this.pendingBegin = statement;
    else await this.run(statement, []);
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const pending = sentAhead.get(compiled);
    sentAhead.delete(compiled);
    const answer = this.write(compiled).then(toQueryResult<R>);
    if (pending && this.inTransaction && this.pipelining) {
      this.track(answer).then(pending.resolve, pending.reject);
      return EMPTY_RESULT;
    }
    try {
      const result = await answer;
      pending?.resolve(result);
      return result;
    } catch (error) {
      const reported = await this.reportable(error);
      pending?.reject(reported);
      throw reported;
    }
  }

  async commit(): Promise<void> {
    if (this.endWithoutStatements()) return;
    this.inTransaction = false;
    const committed = this.write(CompiledQuery.raw('commit'));
    committed.catch(() => {}); // reported below, once the statements ahead of it have their answers
    await Promise.allSettled(this.unanswered);
    const result = await committed.catch((error: unknown) => this.reportable(error).then((reported) => Promise.reject(reported)));
    if (this.failure) throw this.failure.error;
    // COMMIT of a transaction that failed answers ROLLBACK; every failure should have been seen above.
    if (result.command === 'ROLLBACK') throw new Error('the transaction was rolled back by the database');
  }

  async rollback(): Promise<void> {
    if (this.endWithoutStatements()) return;
    // A COMMIT that failed has ended the transaction already (and Kysely rolls back after it).
    if (!this.inTransaction) return;
    this.inTransaction = false;
    const rolledBack = this.write(CompiledQuery.raw('rollback'));
    rolledBack.catch(() => {}); // awaited below, once the statements ahead of it have their answers
    await Promise.allSettled(this.unanswered);
    await rolledBack;
  }

  streamQuery(): AsyncIterableIterator<QueryResult<never>> {
    throw new Error('streaming is not supported: the kit reads in pages');
  }

  release(): void {
    this.inTransaction = false;
    this.pendingBegin = undefined;
    this.unanswered.clear();
    this.client.release(this.stale);
    this.stale = undefined;
  }

  /** A transaction that never ran a statement never reached the database: nothing to end there. */
  private endWithoutStatements(): boolean {
    if (this.pendingBegin === undefined) return false;
    this.pendingBegin = undefined;
    this.inTransaction = false;
    return true;
  }

  /** Writes the statement (after a held-back BEGIN, in one write) and returns its answer. */
  private write(compiled: CompiledQuery): Promise<pg.QueryResult> {
    const begin = this.pendingBegin;
    this.pendingBegin = undefined;
    if (begin === undefined) return this.run(compiled.sql, compiled.parameters);
    const stream = (this.client as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
    stream?.cork?.();
    try {
      this.track(this.run(begin, []));
      return this.run(compiled.sql, compiled.parameters);
    } finally {
      stream?.uncork?.();
    }
  }

  private run(text: string, parameters: readonly unknown[]): Promise<pg.QueryResult> {
    // Without parameters pg uses the simple protocol, which also runs several statements in
    // one text (migrations, scripts); a prepared statement holds exactly one.
    const name = parameters.length > 0 ? this.names.nameOf(text) : undefined;
    const values = [...parameters];
    const answer = name ? this.client.query({ name, text, values }) : this.client.query(text, values);
    return answer.catch((error: unknown) => {
      // 0A000 here is "cached plan must not change result type": a table changed under a
      // prepared `select *`. The statement would fail on this connection from now on, so
      // the pool replaces the connection and the caller's retry runs on a fresh one.
      if (name && (error as { code?: unknown }).code === '0A000') this.stale = error as Error;
      throw error;
    });
  }

  /** Keeps an answer until COMMIT or ROLLBACK, remembering the first failure. */
  private track<T>(answer: Promise<T>): Promise<T> {
    this.unanswered.add(answer);
    answer.then(
      () => this.unanswered.delete(answer),
      (error: unknown) => {
        this.unanswered.delete(answer);
        this.failure ??= { error };
      },
    );
    return answer;
  }

  /** The error to report for a failed statement: the failure that aborted the transaction, if it came first. */
  private async reportable(error: unknown): Promise<unknown> {
    if ((error as { code?: unknown }).code !== IN_FAILED_TRANSACTION) return error;
    await Promise.allSettled(this.unanswered);
    return this.failure?.error ?? error;
  }
}

/** pg's result as Kysely reads it: the rows, and the count of rows a write touched. */
function toQueryResult<R>({ command, rowCount, rows }: pg.QueryResult): QueryResult<R> {
  const wrote = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
  return { rows: (rows ?? []) as R[], ...(wrote ? { numAffectedRows: BigInt(rowCount ?? 0) } : {}) };
}

/**
 * Kysely's Driver over a pg pool whose clients run in pipeline mode. With `pipelining` false
 * (KIT_WITHOUT=pipelining; the pool then without pipeline mode) every statement, BEGIN and those
 * given to sendAhead included, is a round trip of its own, answered before the next is written.
 */
export class PipelinedDriver implements Driver {
  private readonly connections = new WeakMap<pg.PoolClient, PipelinedConnection>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly pipelining = true,
  ) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const client = await this.pool.connect();
    let connection = this.connections.get(client);
    if (!connection) this.connections.set(client, (connection = new PipelinedConnection(client, this.pipelining)));
    return connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const characteristics = [settings.isolationLevel && `isolation level ${settings.isolationLevel}`, settings.accessMode].filter(Boolean);
    await (connection as PipelinedConnection).begin(characteristics.length > 0 ? `start transaction ${characteristics.join(' ')}` : 'begin');
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return (connection as PipelinedConnection).commit();
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return (connection as PipelinedConnection).rollback();
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as PipelinedConnection).release();
  }

  async destroy(): Promise<void> {
    await this.pool.end();
  }
}
