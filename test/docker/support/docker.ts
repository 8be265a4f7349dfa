/**
 * The Docker and Compose command lines `npm run test:docker` drives, found on this machine.
 *
 * - docker: the first `docker` on PATH that can build with BuildKit (the Dockerfile uses
 *   RUN --mount): one with the buildx plugin, or a client older than 23 with BuildKit built in.
 *   DOCKER names one explicitly.
 * - compose: `docker compose` (v2) when that client has it, else `docker-compose` (v1; Debian
 *   packages only v1). docker-compose.yml is written for both.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; a failure says what ran and what it printed. */
export async function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await exec(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    const output = `${failed.stderr ?? ''}${failed.stdout ?? ''}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${file} ${args.join(' ')} failed: ${failed.message.split('\n')[0]}\n${output}`, { cause: error });
  }
}

const succeeds = (file: string, args: string[]) => run(file, args, { timeoutMs: 20_000 }).then(() => true, () => false);

function onPath(name: string): string[] {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .filter((file) => {
      try {
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

export interface DockerTools {
  docker: string;
  /** The environment every docker and compose call runs with (BuildKit on). */
  env: NodeJS.ProcessEnv;
  compose: { file: string; prefix: string[]; version: string };
}

export async function findDockerTools(): Promise<DockerTools> {
  const env = { ...process.env, DOCKER_BUILDKIT: '1' };
  const candidates = process.env.DOCKER ? [process.env.DOCKER] : [...new Set(onPath('docker'))];
  let docker: string | undefined;
  for (const candidate of candidates) {
    if (await succeeds(candidate, ['buildx', 'version'])) {
      docker = candidate;
      break;
    }
    const version = await run(candidate, ['version', '--format', '{{.Client.Version}}'], { timeoutMs: 20_000 }).then(({ stdout }) => stdout.trim(), () => '');
    if (/^(1\d|2[0-2])\./.test(version)) {
      docker = candidate;
      break;
    }
  }
  if (!docker) throw new Error(`no docker client that builds with BuildKit on PATH (tried ${candidates.join(', ') || 'none'}): install docker-buildx, or set DOCKER`);
  if (!(await succeeds(docker, ['info', '--format', '{{.ServerVersion}}']))) throw new Error(`${docker} finds no Docker engine: start dockerd`);

  let compose: DockerTools['compose'] | undefined;
  const v2 = await run(docker, ['compose', 'version', '--short'], { env, timeoutMs: 20_000 }).then(({ stdout }) => stdout.trim(), () => undefined);
  if (v2) compose = { file: docker, prefix: ['compose'], version: `v2 ${v2}` };
  else {
    const [v1] = onPath('docker-compose');
    const version = v1 ? await run(v1, ['version', '--short'], { timeoutMs: 20_000 }).then(({ stdout }) => stdout.trim(), () => undefined) : undefined;
    if (v1 && version) compose = { file: v1, prefix: [], version: `v1 ${version}` };
  }
  if (!compose) throw new Error('neither `docker compose` nor `docker-compose` is installed');
  return { docker, env, compose };
}
