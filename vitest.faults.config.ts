import { defineConfig } from 'vitest/config';

/*
 * `npm run test:faults`: the fault-injection suite (test/faults). Not part of `npm test`: its
 * files end in `.fault.ts`, which the main config's include does not match. Each scenario runs
 * the four services as child processes, so files run one at a time: on a small machine two
 * scenarios side by side would measure each other's load, not the fault.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.fault.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    // A scenario that fails is a finding: running it again would hide a flaky bug.
    retry: 0,
  },
});
