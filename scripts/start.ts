/**
 * `npm start`: migrate and seed, build the dashboard page, then run the four services as
 * separate processes with prefixed output, against PostgreSQL and RabbitMQ on localhost unless
 * the environment says otherwise. Ctrl-C (or SIGTERM) stops every service gracefully.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { migrateAll } from './migrate.ts';

const services = ['order', 'payment', 'inventory', 'notification'] as const;
const colours = { order: 36, payment: 35, inventory: 33, notification: 32 } as const;
const root = fileURLToPath(new URL('..', import.meta.url));

function prefix(service: (typeof services)[number]): string {
  const label = `[${service}]`.padEnd(15);
  return process.stdout.isTTY ? `\x1b[${colours[service]}m${label}\x1b[0m` : label;
}

function run(service: (typeof services)[number]): ChildProcess {
  // Each service gets its own database: <SERVICE>_DATABASE_URL when given, else the service's default.
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const own = process.env[`${service.toUpperCase()}_DATABASE_URL`];
  if (own) env.DATABASE_URL = own;
  // The dashboard (order's GET /) shows the others' GET /products and GET /metrics, read-only, and knows payment's pace.
  if (service === 'order') {
    env.DASHBOARD_PAYMENT_URL ??= 'http://127.0.0.1:3001';
    env.DASHBOARD_INVENTORY_URL ??= 'http://127.0.0.1:3002';
    env.DASHBOARD_NOTIFICATION_URL ??= 'http://127.0.0.1:3003';
    env.DASHBOARD_PAYMENT_PROCESSING_MS ??= process.env.PAYMENT_PROCESSING_MS || '0';
  }
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix(service)} ${line}\n`));
  }
  return child;
}

await migrateAll(process.env, (line) => console.log(line)).catch((error: Error) => {
  console.error(`migration failed: ${error.message}`);
  console.error('Is PostgreSQL running on localhost:5432 (or ORDER_/PAYMENT_/INVENTORY_DATABASE_URL set)?');
  process.exit(1);
});

// The dashboard page the order service serves at GET / (`npm run build:web`); without it, GET / says how to build it.
await import('vite')
  .then(({ build }) => build({ root: join(root, 'dashboard/web'), logLevel: 'warn' }))
  .then(
    () => console.log('dashboard page built: http://localhost:3000/'),
    (error: Error) => console.error(`dashboard page not built (${error.message}); the services start anyway`),
  );

const children = new Map(services.map((service) => [service, run(service)]));
let stopping = false;
const stopAll = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) child.kill(signal);
};
process.on('SIGINT', () => stopAll('SIGTERM'));
process.on('SIGTERM', () => stopAll('SIGTERM'));

const exits = [...children].map(
  ([service, child]) =>
    new Promise<number>((resolve) =>
      child.on('exit', (code, signal) => {
        if (!stopping) {
          console.error(`${prefix(service)} exited unexpectedly (${signal ?? `code ${code}`}); stopping the others`);
          stopAll('SIGTERM');
        }
        resolve(code ?? 1);
      }),
    ),
);
const codes = await Promise.all(exits);
process.exit(codes.every((code) => code === 0) ? 0 : 1);
