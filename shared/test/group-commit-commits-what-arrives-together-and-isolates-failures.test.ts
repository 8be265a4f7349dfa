/**
 * Contract of GroupCommit, the kit's group commit (its use on a real database is proven by the
 * order service's intake tests): items submitted in one tick go as one group behind the first,
 * which starts alone; a refusal reaches its item only; a group that throws is committed item by
 * item, unless the connection failed, when every item gets that failure and none a second try;
 * after stop, items are refused with the service's own refusal.
 */
import { describe, expect, test } from 'vitest';
import { GroupCommit, InfrastructureFailure, type Committed } from '../src/internal.ts';

/** A group commit over numbers whose commit records every group and refuses odd numbers. */
function doubling(options: { failGroupsOver?: number; failure?: () => Error } = {}) {
  const groups: number[][] = [];
  const commit = new GroupCommit<number, number>({
    maxBatch: 4,
    stopped: () => new Error('stopped'),
    commit: async (items) => {
      groups.push([...items]);
      if (options.failGroupsOver !== undefined && items.length > options.failGroupsOver) throw options.failure!();
      return items.map((item): Committed<number> => (item % 2 ? { ok: false, refusal: new Error(`odd ${item}`) } : { ok: true, value: item * 2 }));
    },
  });
  const submitAll = (items: number[]) => Promise.all(items.map((item) => commit.submit(item).catch((error: Error) => error.message)));
  return { commit, groups, submitAll };
}

describe('GroupCommit', () => {
  test('commits the first item alone, then what arrived meanwhile together, up to maxBatch', async () => {
    const { groups, submitAll } = doubling();
    expect(await submitAll([0, 2, 4, 6, 8, 10])).toEqual([0, 4, 8, 12, 16, 20]);
    expect(groups).toEqual([[0], [2, 4, 6, 8], [10]]);
  });

  test('a refusal reaches its own item only', async () => {
    const { submitAll } = doubling();
    expect(await submitAll([0, 1, 2])).toEqual([0, 'odd 1', 4]);
  });

  test('a group that fails is committed item by item', async () => {
    const { groups, submitAll } = doubling({ failGroupsOver: 1, failure: () => new Error('constraint') });
    expect(await submitAll([0, 2, 4])).toEqual([0, 4, 8]);
    expect(groups).toEqual([[0], [2, 4], [2], [4]]);
  });

  test('a group whose connection failed fails whole, with no second try', async () => {
    const { groups, submitAll } = doubling({ failGroupsOver: 1, failure: () => new InfrastructureFailure('connection terminated') });
    expect(await submitAll([0, 2, 4])).toEqual([0, 'connection terminated', 'connection terminated']);
    expect(groups).toEqual([[0], [2, 4]]);
  });

  test('stop waits for the items it took, then refuses new ones', async () => {
    const { commit, submitAll } = doubling();
    const taken = submitAll([0, 2]);
    await commit.stop();
    expect(await taken).toEqual([0, 4]);
    await expect(commit.submit(6)).rejects.toThrow('stopped');
  });
});
