import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';

/** Finds database/migrations by walking up from this file, so it works from source and from a bundle in dist/. */
export function migrationsRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'database', 'migrations');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('database/migrations not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Creates the database named in the URL when it does not exist yet (several migrators may race: that is fine). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount) return;
    await admin.query(`create database "${name.replaceAll('"', '""')}"`).catch((error: { code?: string }) => {
      if (error.code !== '42P04' && error.code !== '23505') throw error;
    });
  } finally {
    await admin.end();
  }
}

/**
 * Brings a service database up to date: the kit's own tables (outbox, processed_events)
 * from database/migrations/messaging, then the service's tables from
 * database/migrations/<service>. Each set keeps its own history table.
 */
export async function migrateDatabase(options: { databaseUrl: string; service: string; log?: (message: string) => void }): Promise<void> {
  await ensureDatabase(options.databaseUrl);
  const root = migrationsRoot();
  const log = options.log ?? (() => {});
  const sets = [
    { dir: join(root, 'messaging'), table: 'pgmigrations_messaging' },
    { dir: join(root, options.service), table: 'pgmigrations' },
  ];
  for (const set of sets) {
    if (!existsSync(set.dir)) continue;
    await runner({
      databaseUrl: options.databaseUrl,
      dir: set.dir,
      migrationsTable: set.table,
      direction: 'up',
      count: Infinity,
      logger: { debug: () => {}, info: log, warn: log, error: log },
      verbose: false,
    });
  }
}
