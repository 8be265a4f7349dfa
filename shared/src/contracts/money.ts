/*
 * Decimal amounts <-> integer minor units, without ever computing with a float.
 *
 * Every currency of the catalogue has two decimal places. A request may give an amount as a
 * JSON number or as a decimal string; both are read as text ("125.5", "125.50") and converted
 * digit by digit, so no float ever rounds a price.
 */

/** The largest amount anywhere in the system: 1,000,000,000.00, the catalogue's amountMinor maximum. */
export const MAX_AMOUNT_MINOR = 100_000_000_000;

/** What `readAmount` makes of an amount: its minor units, or what is wrong with it ("must not be negative"). */
export type AmountResult = { ok: true; minor: number } | { ok: false; error: string };

const DECIMAL = /^(\d+)(?:\.(\d{1,2}))?$/;

/**
 * Reads a non-negative amount with at most two decimals ("125.50", "125.5", 125.5, "7", 0) into
 * integer minor units, or says what is wrong with it. Rejects negatives, three or more decimals,
 * exponent notation, NaN and infinities, anything but plain ASCII digits, and amounts over
 * MAX_AMOUNT_MINOR.
 *
 * A number is read through its shortest round-trip text (what `String(n)` gives), which is
 * exactly the decimal the JSON sender wrote, up to trailing zeros: 125.50 → "125.5".
 */
export function readAmount(value: number | string): AmountResult {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, error: 'must be a finite number' };
    text = String(value); // String(-0) is "0"
  } else if (typeof value === 'string') {
    text = value;
  } else {
    return { ok: false, error: 'must be a number or a decimal string' };
  }

  if (text.startsWith('-')) return { ok: false, error: 'must not be negative' };
  if (/[eE]/.test(text)) return { ok: false, error: 'must be a plain decimal, not exponent notation' };
  if (/^\d+\.\d{3,}$/.test(text)) return { ok: false, error: 'must have at most two decimal places' };
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, error: 'must be a decimal amount such as 125.50' };

  const whole = match[1]!.replace(/^0+(?=\d)/, '');
  const fraction = (match[2] ?? '').padEnd(2, '0');
  const max = BigInt(MAX_AMOUNT_MINOR);
  // Bound the digits first, so a million-digit string is not turned into a BigInt.
  const minor = whole.length > String(max / 100n).length ? undefined : BigInt(whole) * 100n + BigInt(fraction);
  if (minor === undefined || minor > max) return { ok: false, error: `must not exceed ${max % 100n === 0n ? String(max / 100n) : formatMinor(max)}` };
  return { ok: true, minor: Number(minor) };
}

/**
 * Minor units from a request amount: a number such as 12.5 or a string such as "12.50",
 * non-negative with at most two decimals; undefined for anything else (see `readAmount`).
 */
export function parseAmount(value: number | string): number | undefined {
  const result = readAmount(value);
  return result.ok ? result.minor : undefined;
}

/** Integer minor units as a decimal string with two places: 12550 → "125.50", 5 → "0.05", -250 → "-2.50". */
export function formatMinor(minor: number | bigint): string {
  if (typeof minor === 'number' && !Number.isSafeInteger(minor)) throw new RangeError(`not an integer amount of minor units: ${minor}`);
  const value = BigInt(minor);
  const sign = value < 0n ? '-' : '';
  const magnitude = value < 0n ? -value : value;
  return `${sign}${magnitude / 100n}.${(magnitude % 100n).toString().padStart(2, '0')}`;
}
