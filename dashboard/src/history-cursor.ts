/*
 * Where the dashboard's feed stands in saga_history, whose ids are handed out when a row is
 * inserted, not when its transaction commits. Two transactions that take ids 10 and 11 may
 * commit 11 first: a reader that only asks for `id > last` would then never see 10. So the
 * cursor remembers the ids it skipped (gaps) and asks for them again until they show up or
 * a grace period ends (an id of a rolled-back transaction never shows up).
 *
 * The watermark is the highest id below which every row was delivered (or given up on): the
 * id a client may resume from without missing a row. It lags behind the position while a gap
 * is open; resuming from it re-sends a few rows, which the page ignores by id.
 */

/** The most skipped ids remembered at once; a wider jump only keeps the newest. */
const MAX_GAPS = 2000;

export class HistoryCursor {
  private last: number;
  /** Skipped id → when to give up on it (ms). */
  private readonly gaps = new Map<number, number>();

  /**
   * @param start the highest id seen, and the ids below it that were not visible (in flight or rolled back)
   * @param gapMs how long a skipped id is waited for
   */
  constructor(
    start: { max: number; missing: readonly number[] },
    private readonly gapMs: number,
    now: number,
  ) {
    this.last = start.max;
    for (const id of start.missing.slice(-MAX_GAPS)) this.gaps.set(id, now + gapMs);
  }

  /** The highest id accepted. */
  get position(): number {
    return this.last;
  }

  /** Every row at or below this id has been accepted or given up on. */
  get watermark(): number {
    let lowest = Infinity;
    for (const id of this.gaps.keys()) if (id < lowest) lowest = id;
    return lowest === Infinity ? this.last : lowest - 1;
  }

  /** The skipped ids still waited for, lowest first. */
  pending(): number[] {
    return [...this.gaps.keys()].sort((a, b) => a - b);
  }

  /** Gives up on skipped ids whose grace period has ended. */
  expire(now: number): void {
    for (const [id, until] of this.gaps) if (until <= now) this.gaps.delete(id);
  }

  /**
   * Takes one row read from the table; rows of one read must come in id order. True when the
   * row is new (deliver it), false when it was delivered before.
   */
  accept(id: number, now: number): boolean {
    if (id > this.last) {
      for (let skipped = Math.max(this.last + 1, id - MAX_GAPS); skipped < id; skipped++) this.gaps.set(skipped, now + this.gapMs);
      this.last = id;
      if (this.gaps.size > MAX_GAPS) for (const oldest of this.pending().slice(0, this.gaps.size - MAX_GAPS)) this.gaps.delete(oldest);
      return true;
    }
    return this.gaps.delete(id);
  }
}

/**
 * The resume point for a reader that sees `visible` (the ids of one snapshot, at most a window
 * below its highest): just below the lowest id it cannot see, or the highest id.
 */
export function resumePointOf(tail: { max: number; missing: readonly number[] }): number {
  const [lowest] = tail.missing;
  return lowest === undefined ? tail.max : lowest - 1;
}

/** The highest id, and the ids within `window` below it that are missing from `visible` (sorted ascending). */
export function tailOf(visible: readonly number[], window: number): { max: number; missing: number[] } {
  const max = visible.length ? Math.max(...visible) : 0;
  const present = new Set(visible);
  const missing: number[] = [];
  for (let id = Math.max(1, max - window + 1); id < max; id++) if (!present.has(id)) missing.push(id);
  return { max, missing };
}
