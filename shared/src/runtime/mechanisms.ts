import { ConfigError } from '../config/load-config.ts';

/**
 * The kit's performance mechanisms, each of which a bench can switch off by name in
 * KIT_WITHOUT (a comma list) to measure what it pays (`npm run bench:mechanisms`). Bench-only:
 * with KIT_WITHOUT unset, as in every deployment, they are all on. docs/performance.md says
 * what each name turns into.
 */
export const MECHANISMS = [
  'pipelining',
  'prepared-statements',
  'coalesced-writes',
  'consumer-batches',
  'intake-group-commit',
  'publish-from-memory',
] as const;

export type Mechanism = (typeof MECHANISMS)[number];

/** The mechanisms a KIT_WITHOUT value switches off; an unknown name is a ConfigError naming KIT_WITHOUT. */
export function mechanismsOff(value: string | undefined = process.env.KIT_WITHOUT): ReadonlySet<Mechanism> {
  const names = (value ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const unknown = names.find((name) => !(MECHANISMS as readonly string[]).includes(name));
  if (unknown !== undefined) throw new ConfigError(`KIT_WITHOUT names ${JSON.stringify(unknown)}: expected a comma list of ${MECHANISMS.join(', ')}`);
  return new Set(names as Mechanism[]);
}

/** Read once per value of KIT_WITHOUT, so a caller on a hot path pays a lookup, not a parse. */
let lastRead: { value: string | undefined; off: ReadonlySet<Mechanism> } | undefined;

/** True when KIT_WITHOUT switches this mechanism off (startup has already refused an unknown name). */
export function switchedOff(mechanism: Mechanism): boolean {
  const value = process.env.KIT_WITHOUT;
  const read = lastRead !== undefined && lastRead.value === value ? lastRead : (lastRead = { value, off: mechanismsOff(value) });
  return read.off.has(mechanism);
}
