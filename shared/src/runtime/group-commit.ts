import { classifyFailure } from '../consumer/failure.ts';
import { SerialBatches } from './serial-batches.ts';

/** What became of one item of a group: committed with a value, or refused alone while the others of its group commit. */
export type Committed<R> = { ok: true; value: R } | { ok: false; refusal: unknown };

export interface GroupCommitOptions<T, R> {
  /** Items committed together at most; 1 gives every item a transaction of its own. */
  maxBatch: number;
  /**
   * Commits the items in one unit of work and says, item by item in order, what became of
   * each. Throwing rolls back all of them. It must do for each item exactly what it does for
   * that item alone, so that grouping changes nothing a caller sees.
   */
  commit(items: readonly T[]): Promise<readonly Committed<R>[]>;
  /** The refusal of an item submitted after stop(). */
  stopped(): unknown;
  /** Told the size of every group before it is committed (a metric). */
  onGroup?(size: number): void;
}

/**
 * Group commit for requests a service accepts (POST /orders): items submitted while a group is
 * being committed wait and go together into the next (up to maxBatch), so BEGIN, COMMIT and
 * the round trips between them are paid once for many; under light load an item still gets a
 * transaction of its own at once. One group commits at a time, so groups of one process never
 * wait on each other's locks.
 *
 * If a group fails, each of its items is committed on its own, so only the one at fault gets
 * the error. If the connection failed, every item of the group gets that error rather than a
 * second try: the COMMIT may have gone through unseen, and a second try could write it twice.
 */
export class GroupCommit<T, R> {
  private readonly groups: SerialBatches<Waiting<T, R>>;
  private isStopped = false;

  constructor(private readonly options: GroupCommitOptions<T, R>) {
    this.groups = new SerialBatches(options.maxBatch, (group) => (group.length === 1 ? this.commitAlone(group[0]!) : this.commitGroup(group)), 'intake-group-commit');
  }

  /** Resolves with the item's value once its group has committed; rejects with its refusal or the group's failure. */
  submit(item: T): Promise<R> {
    if (this.isStopped) return Promise.reject(this.options.stopped());
    return new Promise((resolve, reject) => this.groups.add({ item, resolve, reject }));
  }

  /** Takes no more items, and resolves once every item it took has its answer. */
  async stop(): Promise<void> {
    this.isStopped = true;
    await this.groups.idle();
  }

  private async commitGroup(group: readonly Waiting<T, R>[]): Promise<void> {
    let outcomes: readonly Committed<R>[];
    try {
      outcomes = await this.commit(group);
    } catch (error) {
      if (classifyFailure(error) === 'infrastructure') {
        for (const waiting of group) waiting.reject(error);
        return;
      }
      // A statement failed, so nothing was committed. Each on its own, all at once as they would have been without grouping.
      await Promise.all(group.map((waiting) => this.commitAlone(waiting)));
      return;
    }
    group.forEach((waiting, index) => settle(waiting, outcomes[index]!));
  }

  private async commitAlone(waiting: Waiting<T, R>): Promise<void> {
    try {
      const [outcome] = await this.commit([waiting]);
      settle(waiting, outcome!);
    } catch (error) {
      waiting.reject(error);
    }
  }

  private async commit(group: readonly Waiting<T, R>[]): Promise<readonly Committed<R>[]> {
    this.options.onGroup?.(group.length);
    const outcomes = await this.options.commit(group.map((waiting) => waiting.item));
    if (outcomes.length !== group.length) throw new Error(`a group of ${group.length} came back with ${outcomes.length} outcomes`);
    return outcomes;
  }
}

interface Waiting<T, R> {
  item: T;
  resolve(value: R): void;
  reject(error: unknown): void;
}

function settle<R>(waiting: Waiting<unknown, R>, outcome: Committed<R>): void {
  if (outcome.ok) waiting.resolve(outcome.value);
  else waiting.reject(outcome.refusal);
}
