/** "125.50" from 12550 minor units: integer arithmetic only, so no float ever rounds a price. */
export function formatMinor(amountMinor: number): string {
  const sign = amountMinor < 0 ? '-' : '';
  const absolute = Math.abs(amountMinor);
  const cents = absolute % 100;
  return `${sign}${(absolute - cents) / 100}.${String(cents).padStart(2, '0')}`;
}
