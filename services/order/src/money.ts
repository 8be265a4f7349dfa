/*
 * Decimal amounts <-> integer minor units, without ever computing with a float.
 *
 * Every currency of the catalogue (USD, EUR, GBP, CHF, CAD, AUD) has two decimal places.
 * A request may give an amount as a JSON number or as a decimal string; both are read as
 * text ("125.5", "125.50") and converted digit by digit with BigInt.
 */

/** The largest amount accepted, in major units (the catalogue's amountMinor maximum is 1e11). */
export const MAX_AMOUNT_MAJOR = 1_000_000_000n;
const MAX_MINOR = MAX_AMOUNT_MAJOR * 100n;

export type ParsedAmount = { ok: true; minor: number } | { ok: false; error: string };

const DECIMAL = /^(\d+)(?:\.(\d{1,2}))?$/;

/**
 * Reads a non-negative amount with at most two decimals ("125.50", "125.5", 125.5, "7", 0)
 * into integer minor units. Rejects negatives, three or more decimals, exponent notation,
 * NaN and infinities, anything but plain digits, and amounts over 1,000,000,000.00.
 *
 * A number is read through its shortest round-trip text (what `String(n)` gives), which is
 * exactly the decimal the JSON sender wrote, up to trailing zeros: 125.50 → "125.5".
 */
export function parseAmount(value: number | string): ParsedAmount {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, error: 'must be a finite number' };
    text = Object.is(value, -0) ? '0' : String(value);
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
  // Bound the digits first, so a million-digit string is not turned into a BigInt.
  if (whole.length > MAX_AMOUNT_MAJOR.toString().length) return { ok: false, error: `must not exceed ${MAX_AMOUNT_MAJOR}` };
  const minor = BigInt(whole) * 100n + BigInt(fraction);
  if (minor > MAX_MINOR) return { ok: false, error: `must not exceed ${MAX_AMOUNT_MAJOR}` };
  return { ok: true, minor: Number(minor) };
}

/** Integer minor units as a decimal string with two places: 12550 → "125.50", 5 → "0.05", -250 → "-2.50". */
export function formatAmount(minor: number | bigint): string {
  if (typeof minor === 'number' && !Number.isSafeInteger(minor)) throw new RangeError(`not an integer amount of minor units: ${minor}`);
  const value = BigInt(minor);
  const sign = value < 0n ? '-' : '';
  const magnitude = value < 0n ? -value : value;
  return `${sign}${magnitude / 100n}.${(magnitude % 100n).toString().padStart(2, '0')}`;
}
