/**
 * The deployment files agree with the code, checked without Docker: docker-compose.yml,
 * the Dockerfile, scripts/build.mjs, .env.example and each process's settings schema.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');

// ---- what the repository says ------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
  volumes?: (string | { source?: string; target?: string })[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
}

// Merge keys (<<: *anchor) as Docker Compose reads them.
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const dockerfile = read('Dockerfile');
const rootPackage = JSON.parse(read('package.json')) as { scripts: Record<string, string>; workspaces: string[] };
const { entries } = (await import(pathToFileURL(join(root, 'scripts/build.mjs')).href)) as { entries: Record<string, string> };

/** The processes of the system and where each one's settings schema (a TypeBox property map) lives. */
const settingsModules: Record<string, { file: string; exportName: string }> = {
  order: { file: 'services/order/src/settings.ts', exportName: 'orderSettings' },
  payment: { file: 'services/payment/src/settings.ts', exportName: 'paymentSettings' },
  inventory: { file: 'services/inventory/src/settings.ts', exportName: 'inventorySettings' },
  notification: { file: 'services/notification/src/settings.ts', exportName: 'notificationSettings' },
  migrate: { file: 'scripts/migrator-settings.ts', exportName: 'migratorSettings' },
  dlq: { file: 'scripts/dlq/settings.ts', exportName: 'dlqSettings' },
};
const scalable = ['payment', 'inventory', 'notification'];

type Schema = Record<string, { default?: unknown }>;
const schemas = new Map<string, Promise<Schema>>();

/** A process's settings schema, or an error that says which file is missing or incomplete. */
function settingsOf(process: string): Promise<Schema> {
  const known = settingsModules[process];
  if (!known) return Promise.reject(new Error(`no settings module is known for dist/${process}.js: add it to settingsModules in test/deployment.test.ts`));
  let schema = schemas.get(process);
  if (!schema) {
    schema = (async () => {
      const path = join(root, known.file);
      if (!existsSync(path)) throw new Error(`${known.file} does not exist yet: it must export ${known.exportName}, the settings dist/${process}.js reads`);
      const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      const settings = module[known.exportName];
      if (!settings || typeof settings !== 'object') throw new Error(`${known.file} does not export ${known.exportName} (a TypeBox property map)`);
      return settings as Schema;
    })();
    schemas.set(process, schema);
  }
  return schema;
}

/** dist/<name>.js in a service's command, or undefined. */
function bundleOf(service: ComposeService): string | undefined {
  const command = Array.isArray(service.command) ? service.command.join(' ') : (service.command ?? '');
  return /(?:^|[\s/])dist\/([\w-]+)\.js\b/.exec(command)?.[1];
}

function environmentOf(service: ComposeService): Map<string, string> {
  const env = service.environment ?? {};
  const pairs: [string, string][] = Array.isArray(env)
    ? env.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(env).map(([key, value]) => [key, value == null ? '' : String(value)]);
  return new Map(pairs);
}

interface Interpolation {
  name: string;
  /** The default after `:-` or `-`, if any. */
  fallback?: string;
}

/** The ${VAR}, ${VAR:-default} and $VAR references Compose replaces in a value ($$ is a literal $). */
function interpolationsIn(value: string): Interpolation[] {
  const found: Interpolation[] = [];
  const pattern = /\$\{([A-Za-z_]\w*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_]\w*)/g;
  for (const match of value.replaceAll('$$', '').matchAll(pattern)) {
    const [, braced, operator, argument, bare] = match;
    found.push({ name: (braced ?? bare)!, ...(operator?.endsWith('-') ? { fallback: argument ?? '' } : {}) });
  }
  return found;
}

const builtServices = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);
const allInterpolations = Object.values(compose.services).flatMap((service) =>
  [...environmentOf(service).values(), ...(service.ports ?? []).map(String)].flatMap(interpolationsIn),
);

/** KEY=value and `# KEY=value` (commented out: unset or per-service default) lines of .env.example. */
function envExample(): Map<string, { value: string; commented: boolean }> {
  const listed = new Map<string, { value: string; commented: boolean }>();
  for (const line of read('.env.example').split('\n')) {
    const match = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, comment, name, raw] = match;
    const value = raw!.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
    if (listed.has(name!)) throw new Error(`.env.example lists ${name} twice`);
    listed.set(name!, { value, commented: Boolean(comment) });
  }
  return listed;
}

// ---- the checks ------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  test('parses and builds its services from this repository', () => {
    expect(builtServices.map(([name]) => name).sort()).toEqual(['inventory', 'migrator', 'notification', 'order', 'payment']);
  });

  test.each(builtServices)('%s is built from the Dockerfile and runs a bundle scripts/build.mjs makes', (name, service) => {
    const build = typeof service.build === 'string' ? { context: service.build } : service.build!;
    expect(build.context ?? '.', `${name}: build context`).toBe('.');
    expect(build.dockerfile ?? 'Dockerfile', `${name}: dockerfile`).toBe('Dockerfile');
    if (build.target) expect(dockerfile, `${name}: build target ${build.target} is a stage of the Dockerfile`).toMatch(new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${build.target}\\s*$`, 'im'));
    const bundle = bundleOf(service);
    expect(bundle, `${name}: its command runs node dist/<entry>.js`).toBeDefined();
    expect(Object.keys(entries), `${name}: dist/${bundle}.js is an entry of scripts/build.mjs`).toContain(bundle);
  });

  test.each(Object.entries(entries))('the source of dist/%s.js exists (%s)', (_bundle, source) => {
    expect(existsSync(join(root, source)), `${source} does not exist yet: npm run build (and the image) cannot make this bundle`).toBe(true);
  });

  test.each(builtServices)('%s sets only environment variables its settings schema reads', async (name, service) => {
    const schema = await settingsOf(bundleOf(service)!);
    const problems: string[] = [];
    for (const [key, value] of environmentOf(service)) {
      if (!(key in schema)) {
        problems.push(`${key} is not read by dist/${bundleOf(service)}.js (not in ${settingsModules[bundleOf(service)!]!.exportName})`);
        continue;
      }
      // KEY: ${KEY:-default} must fall back to the service's own default, so an empty .env changes nothing.
      const declared = schema[key]!.default;
      for (const { name: variable, fallback } of interpolationsIn(value)) {
        if (variable === key && fallback !== undefined && declared !== undefined && fallback !== String(declared)) {
          problems.push(`${key} falls back to ${JSON.stringify(fallback)}, but the service's default is ${JSON.stringify(String(declared))}`);
        }
      }
    }
    expect(problems, problems.join('; ')).toEqual([]);
  });

  // Notification has no database. HOST is passed too: its default (loopback, right for `npm start`)
  // would leave a container's server unreachable from the others and from the published port.
  const notPassed: Record<string, string[]> = { notification: ['DATABASE_URL'] };
  test.each(builtServices)('%s is given every setting it reads, so a value in .env reaches it', async (name, service) => {
    const schema = await settingsOf(bundleOf(service)!);
    const env = environmentOf(service);
    const skipped = new Set(notPassed[name] ?? []);
    expect(Object.keys(schema).filter((key) => !env.has(key) && !skipped.has(key))).toEqual([]);
  });

  test('connection URLs name the compose hosts and each service its own database', () => {
    const databaseOf = (url: string | undefined) => (url ? new URL(url) : undefined);
    for (const [name, service] of builtServices) {
      const env = environmentOf(service);
      const urls = name === 'migrator' ? ['order', 'payment', 'inventory'].map((own) => [own, env.get(`${own.toUpperCase()}_DATABASE_URL`)] as const) : [[name, env.get('DATABASE_URL')] as const];
      for (const [own, url] of urls) {
        if (url === undefined && name === 'notification') continue; // no database of its own
        const parsed = databaseOf(url);
        expect(parsed?.hostname, `${name}: ${own}'s database URL`).toBe('postgres');
        expect(parsed?.pathname, `${name}: ${own}'s database URL`).toBe(`/checkout_${own}`);
      }
      if (name !== 'migrator') expect(databaseOf(env.get('RABBITMQ_URL'))?.hostname, `${name}: RABBITMQ_URL`).toBe('rabbitmq');
    }
  });

  test.each(scalable)('%s can be scaled: no container_name and no host ports', (name) => {
    const service = compose.services[name];
    expect(service, `${name} is a compose service`).toBeDefined();
    expect(service!.container_name).toBeUndefined();
    expect(service!.ports ?? []).toEqual([]);
  });

  test('publishes every port on 127.0.0.1 only, on a host port .env can move', () => {
    const problems: string[] = [];
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of (service.ports ?? []).map(String)) {
        if (!port.startsWith('127.0.0.1:')) problems.push(`${name}: ${port} is not bound to 127.0.0.1`);
        else if (!/^127\.0\.0\.1:\$\{[A-Z_]+:-\d+\}:\d+$/.test(port)) problems.push(`${name}: ${port} has a fixed host port (a machine that already uses it cannot start the stack)`);
      }
    }
    expect(problems).toEqual([]);
  });

  test('services start after the migrator and the servers, and restart; the migrator runs once', () => {
    for (const [name, service] of builtServices) {
      const dependsOn = service.depends_on;
      expect(dependsOn && !Array.isArray(dependsOn), `${name}: depends_on with conditions`).toBe(true);
      const conditions = dependsOn as Record<string, { condition?: string }>;
      expect(conditions.postgres?.condition, `${name} waits for postgres`).toBe('service_healthy');
      if (name === 'migrator') {
        expect(service.restart, 'migrator restart').toBe('no');
        continue;
      }
      expect(conditions.rabbitmq?.condition, `${name} waits for rabbitmq`).toBe('service_healthy');
      expect(conditions.migrator?.condition, `${name} waits for the migrator`).toBe('service_completed_successfully');
      expect(service.restart, `${name} restart`).toBe('unless-stopped');
    }
  });

  test('the postgres init script it mounts creates the three service databases', () => {
    const mount = (compose.services.postgres?.volumes ?? []).find((volume) => typeof volume === 'string' && volume.includes('docker-entrypoint-initdb.d'));
    expect(mount, 'postgres mounts an init script').toBeDefined();
    const script = read((mount as string).split(':')[0]!);
    for (const database of ['checkout_order', 'checkout_payment', 'checkout_inventory']) expect(script).toMatch(new RegExp(`create database "?${database}"?`, 'i'));
  });
});

describe('Dockerfile', () => {
  test('every npm run script it calls exists in package.json', () => {
    const called = [...dockerfile.matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]!);
    expect(called.length).toBeGreaterThan(0);
    expect(called.filter((script) => !(script in rootPackage.scripts))).toEqual([]);
  });

  test('copies every workspace package.json before installing, so npm ci sees the whole workspace', () => {
    const workspaces = rootPackage.workspaces.flatMap((pattern) =>
      pattern.endsWith('/*') ? readdirSync(join(root, pattern.slice(0, -2))).map((dir) => `${pattern.slice(0, -2)}/${dir}`) : [pattern],
    );
    const manifests = workspaces.map((dir) => `${dir}/package.json`).filter((file) => existsSync(join(root, file)));
    for (const stage of dockerfile.split(/^FROM\s/m).filter((part) => /npm ci/.test(part))) {
      const beforeInstall = stage.slice(0, stage.indexOf('npm ci'));
      const stageName = /AS\s+(\S+)/i.exec(stage)?.[1];
      const missing = manifests.filter((file) => !new RegExp(`^COPY\\s+${file.replaceAll('.', '\\.')}\\s`, 'm').test(beforeInstall));
      expect(missing, `stage ${stageName} copies these before npm ci`).toEqual([]);
    }
  });

  test('builds the dashboard page and copies it beside the bundles, where the order service looks for it', () => {
    const build = dockerfile.split(/^FROM\s/m).find((stage) => /\bAS\s+build\b/i.test(stage)) ?? '';
    expect(build, 'the build stage runs npm run build:web').toMatch(/^RUN\s.*npm run build:web/m);
    expect(dockerfile, 'the runtime stage copies the page to dist/web').toMatch(/^COPY\s+--from=build\s+\/app\/dashboard\/web\/dist\s+dist\/web\s*$/m);
    expect(read('dashboard/src/page.ts'), 'the order service looks in ./web beside its bundle').toContain("new URL('./web/', import.meta.url)");
  });

  test('runs a bundle scripts/build.mjs makes by default', () => {
    const cmd = /^CMD\s+\[(.*)\]\s*$/m.exec(dockerfile)?.[1];
    const bundle = cmd ? /dist\/([\w-]+)\.js/.exec(cmd)?.[1] : undefined;
    expect(Object.keys(entries)).toContain(bundle);
  });
});

describe('.env.example', () => {
  test('lists exactly the variables the settings schemas read', async () => {
    const union = new Set<string>();
    for (const process of Object.keys(settingsModules)) for (const key of Object.keys(await settingsOf(process))) union.add(key);
    // Variables only docker-compose.yml itself interpolates (read by no process) may be documented too.
    const composeOnly = new Set(allInterpolations.map(({ name }) => name).filter((name) => !union.has(name)));
    const listed = envExample();
    expect([...union].filter((name) => !listed.has(name)), 'read by a service but missing from .env.example').toEqual([]);
    expect([...listed.keys()].filter((name) => !union.has(name) && !composeOnly.has(name)), 'in .env.example but read by nothing').toEqual([]);
  });

  test('gives each variable it sets the default of every service that reads it', async () => {
    const listed = envExample();
    const problems: string[] = [];
    for (const process of Object.keys(settingsModules)) {
      const schema = await settingsOf(process);
      for (const [name, { value, commented }] of listed) {
        const declared = schema[name]?.default;
        if (commented || declared === undefined) continue;
        if (value !== String(declared)) problems.push(`${name}=${value}, but dist/${process}.js defaults to ${String(declared)}`);
      }
    }
    expect(problems, problems.join('; ')).toEqual([]);
  });
});
