/**
 * `npm run build`: bundles each process the image runs into one file under dist/.
 *
 *   services/<s>/src/main.ts → dist/<s>.js   (order, payment, inventory, notification)
 *   scripts/migrate.ts       → dist/migrate.js
 *   scripts/dlq.ts           → dist/dlq.js      (the dead-letter tool: docker compose run --rm order node dist/dlq.js list)
 *
 * The workspace packages (@checkout-saga/*) are bundled, because they are TypeScript
 * sources; every other package stays an import of node_modules, so the runtime image
 * needs `npm ci --omit=dev` and nothing else. After bundling, each output's remaining
 * imports are checked against the production dependencies of the workspace, so a
 * service that imports a devDependency fails here instead of in the container.
 *
 * Importing this module builds nothing: it exports `entries` (the deployment test reads it).
 */
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const outdir = 'dist';

/** dist/<name>.js ← source file, relative to the repository root. */
export const entries = {
  order: 'services/order/src/main.ts',
  payment: 'services/payment/src/main.ts',
  inventory: 'services/inventory/src/main.ts',
  notification: 'services/notification/src/main.ts',
  migrate: 'scripts/migrate.ts',
  dlq: 'scripts/dlq.ts',
};

const WORKSPACE_SCOPE = '@checkout-saga/';

// Some dependencies are CommonJS and call require(); an ESM bundle has none of its own.
const banner = [
  "import { createRequire as __checkoutSagaCreateRequire } from 'node:module';",
  'const require = __checkoutSagaCreateRequire(import.meta.url);',
].join('\n');

/** Bare imports stay external unless they name a workspace package. */
const externalizeDependencies = {
  name: 'externalize-dependencies',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === 'entry-point' || args.path.startsWith(WORKSPACE_SCOPE)) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** The packages `npm ci --omit=dev` installs: dependencies of the root and of every workspace. */
function productionDependencies() {
  const read = (dir) => JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
  const rootPackage = read('.');
  const workspaces = (rootPackage.workspaces ?? []).flatMap((pattern) =>
    pattern.endsWith('/*') ? readdirSync(join(root, pattern.slice(0, -2))).map((name) => join(pattern.slice(0, -2), name)) : [pattern],
  );
  const manifests = [rootPackage, ...workspaces.filter((dir) => existsSync(join(root, dir, 'package.json'))).map(read)];
  return new Set(manifests.flatMap((manifest) => Object.keys(manifest.dependencies ?? {})));
}

const packageName = (specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
const builtins = new Set(builtinModules);
const isBuiltin = (specifier) => specifier.startsWith('node:') || builtins.has(specifier) || builtins.has(specifier.split('/')[0]);

export async function buildAll() {
  const present = Object.entries(entries).filter(([, file]) => existsSync(join(root, file)));
  const missing = Object.entries(entries).filter(([, file]) => !existsSync(join(root, file)));

  rmSync(join(root, outdir), { recursive: true, force: true });
  const problems = missing.map(([name, file]) => `${outdir}/${name}.js: entry point ${file} does not exist`);

  if (present.length) {
    const result = await build({
      absWorkingDir: root,
      entryPoints: Object.fromEntries(present),
      outdir,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      sourcemap: true,
      keepNames: true,
      banner: { js: banner },
      plugins: [externalizeDependencies],
      metafile: true,
      logLevel: 'silent',
    }).catch((error) => ({ failure: error }));

    if ('failure' in result) {
      const errors = result.failure.errors ?? [];
      for (const { text, location } of errors) {
        problems.push(location ? `${location.file}:${location.line}:${location.column}: ${text}` : text);
      }
      if (!errors.length) problems.push(result.failure.message);
    } else {
      const allowed = productionDependencies();
      for (const [output, meta] of Object.entries(result.metafile.outputs)) {
        if (!output.endsWith('.js')) continue;
        const undeclared = new Set(
          meta.imports.filter((entry) => entry.external && !isBuiltin(entry.path) && !allowed.has(packageName(entry.path))).map((entry) => packageName(entry.path)),
        );
        for (const name of undeclared) {
          problems.push(`${output} imports ${name}, which is not a production dependency of any workspace package (the runtime image installs only those)`);
        }
        console.log(`${output.padEnd(22)} ${(meta.bytes / 1024).toFixed(0).padStart(6)} KiB`);
      }
      for (const { text } of result.warnings) console.warn(`warning: ${text}`);
    }
  }

  if (problems.length) {
    throw new Error(`build failed:\n  ${problems.join('\n  ')}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildAll().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
