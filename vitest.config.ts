import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['shared/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'dashboard/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Generous because the first test in a process may start containers.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real sockets and pg/amqp clients: separate processes isolate them best.
    pool: 'forks',
  },
});
