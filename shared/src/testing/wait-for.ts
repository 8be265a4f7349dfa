export interface WaitForOptions {
  /** Give up after this long; default 20 s. */
  timeoutMs?: number;
  /** Pause between probes; default 50 ms. */
  intervalMs?: number;
  /** Says what was awaited, so a timeout explains itself. */
  message?: string;
}

type Falsy = undefined | null | false;

/**
 * Polls `probe` until it returns something truthy and returns that. Tests wait
 * on the state they need instead of sleeping, so they are as fast as the
 * system allows and do not flake when it is slow.
 */
export async function waitFor<T>(
  probe: () => Promise<T | Falsy> | T | Falsy,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: { error: unknown } | { value: unknown } = { value: undefined };

  for (;;) {
    try {
      // A probe stuck on a dead connection must not outlive the deadline.
      const value = await beforeDeadline(probe, deadline);
      if (value) return value as T;
      last = { value };
    } catch (error) {
      last = { error: error === DEADLINE ? new Error('probe still running at the deadline') : error };
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await sleep(Math.min(intervalMs, remaining));
  }

  const what = opts.message ?? 'condition';
  const detail = 'error' in last ? `last error: ${describe(last.error)}` : `last value: ${describe(last.value)}`;
  throw new Error(`waitFor timed out after ${timeoutMs} ms waiting for ${what}; ${detail}`, {
    cause: 'error' in last ? last.error : undefined,
  });
}

const DEADLINE = Symbol('deadline');

async function beforeDeadline<T>(probe: () => Promise<T> | T, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(DEADLINE), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([Promise.resolve().then(probe), expiry]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(x: unknown): string {
  if (x instanceof Error) return x.message;
  if (typeof x === 'string') return JSON.stringify(x);
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}
