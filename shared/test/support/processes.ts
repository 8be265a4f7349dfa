/* Child processes running TypeScript fixtures the way a service runs: `node --import tsx`. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Only what a process needs to start, plus `env`: nothing leaks in from the test runner's own environment. */
function childEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { PATH, HOME, TMPDIR } = process.env;
  return { ...(PATH ? { PATH } : {}), ...(HOME ? { HOME } : {}), ...(TMPDIR ? { TMPDIR } : {}), ...env };
}

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
}

export function startFixture(name: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', fixturePath(name)], { cwd: repositoryRoot, env: childEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return { child, pid: child.pid, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs a fixture to its end and returns what it printed and its exit code. */
export async function runFixture(name: string, env: Record<string, string>): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const fixture = startFixture(name, env);
  const code = await fixture.exited;
  return { code, stdout: fixture.stdout(), stderr: fixture.stderr() };
}
