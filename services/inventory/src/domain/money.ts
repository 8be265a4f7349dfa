/** "125.50" from 12550 minor units: integer arithmetic only, so no float ever rounds a price. */
export function formatMinor(amountMinor: number): string {
  const sign = amountMinor < 0 ? '-' : '';
  const absolute = Math.abs(amountMinor);
  const cents = absolute % 100;
  return `${sign}${(absolute - cents) / 100}.${String(cents).padStart(2, '0')}`;
}

const DECIMAL = /^(0|[1-9]\d{0,11})(?:\.(\d{1,2}))?$/;

/**
 * Minor units from a request amount: a number such as 12.5 or a string such as "12.50",
 * non-negative with at most two decimals; undefined for anything else. The digits are
 * read from the decimal text, never multiplied as a float.
 */
export function parseAmount(value: unknown): number | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : typeof value === 'string' ? value : '';
  const match = DECIMAL.exec(text);
  if (!match) return undefined;
  const minor = Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  return Number.isSafeInteger(minor) ? minor : undefined;
}
