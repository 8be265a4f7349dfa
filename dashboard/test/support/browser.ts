/**
 * The Chromium-family browser the dashboard's browser test drives: one the machine already has,
 * never a downloaded build (playwright-core only drives it).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Looked up on PATH in this order: Debian/Ubuntu, Fedora/Arch, Google's packages. */
const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome', 'chrome'];
/** Where macOS installs them (not on PATH). */
const APP_PATHS = ['/Applications/Google Chrome.app/Contents/MacOS/Google Chrome', '/Applications/Chromium.app/Contents/MacOS/Chromium'];

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** CHROMIUM_PATH if set (it must name an executable), else the first usual name on PATH, else a macOS app. */
export function findBrowser(env: NodeJS.ProcessEnv = process.env, appPaths: readonly string[] = APP_PATHS): string | undefined {
  const named = env.CHROMIUM_PATH?.trim();
  if (named) {
    if (!isExecutableFile(named)) throw new Error(`CHROMIUM_PATH=${named} is not an executable file`);
    return named;
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of NAMES) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return appPaths.find(isExecutableFile);
}

const underCi = (env: NodeJS.ProcessEnv) => Boolean(env.CI) && !['false', '0'].includes(env.CI!.toLowerCase());

/**
 * The browser to use, or why the browser test is skipped. Under CI a missing browser is an
 * error: a skipped test there would hide a dashboard that no longer works.
 */
export function browserForTests(env: NodeJS.ProcessEnv = process.env, appPaths: readonly string[] = APP_PATHS): { executable: string } | { skip: string } {
  const executable = findBrowser(env, appPaths);
  if (executable) return { executable };
  const how = `install Chromium or Chrome (apt-get install chromium), or set CHROMIUM_PATH to one; looked for ${NAMES.join(', ')} on PATH`;
  if (underCi(env)) throw new Error(`no browser for the dashboard test and CI is set: ${how}`);
  return { skip: `dashboard browser test skipped: no browser found. To run it, ${how}` };
}
