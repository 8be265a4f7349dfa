import { switchedOff, type Mechanism } from './mechanisms.ts';

/**
 * Group commit, one batch at a time: items that arrive while a batch is being processed wait
 * and go together into the next one (at most maxBatch); under light load an item starts at
 * once, alone, with nothing to wait for. `process` settles each item of its batch itself and
 * never rejects.
 */
export class SerialBatches<T> {
  private waiting: T[] = [];
  private running: Promise<void> | undefined;
  /** Switched off (KIT_WITHOUT): each item is processed at once, alone, as it would be without group commit. */
  private readonly grouped: boolean;
  private readonly alone = new Set<Promise<void>>();

  /** `mechanism`: the name KIT_WITHOUT switches this group commit off by, if any (GroupCommit's is intake-group-commit). */
  constructor(
    private readonly maxBatch: number,
    private readonly process: (batch: T[]) => Promise<void>,
    mechanism?: Mechanism,
  ) {
    this.grouped = mechanism === undefined || !switchedOff(mechanism);
  }

  add(item: T): void {
    if (!this.grouped) {
      const work: Promise<void> = this.process([item]).finally(() => this.alone.delete(work));
      this.alone.add(work);
      return;
    }
    this.waiting.push(item);
    this.next();
  }

  /** Drops the waiting items (not yet in a batch) that match. */
  discard(match: (item: T) => boolean): void {
    this.waiting = this.waiting.filter((item) => !match(item));
  }

  /** Resolves once nothing waits or runs; a finishing batch starts the next, so this waits for all of them. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
    await Promise.all(this.alone);
  }

  private next(): void {
    if (this.running || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, Math.max(1, this.maxBatch));
    this.running = this.process(batch).finally(() => {
      this.running = undefined;
      this.next();
    });
  }
}
