import { defineConfig } from 'vitest/config';

/*
 * `npm run test:docker`: the image and the compose stack (test/docker), against a running Docker
 * engine. Not part of `npm test`: its files end in `.docker.ts`. The image build in beforeAll
 * (npm ci over the network) dominates; the hook's own timeout bounds it.
 */
export default defineConfig({
  test: {
    include: ['test/docker/**/*.docker.ts'],
    testTimeout: 300_000,
    hookTimeout: 1_200_000,
    pool: 'forks',
    fileParallelism: false,
    retry: 0,
  },
});
