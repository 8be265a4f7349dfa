/*
 * The four services as real child processes (`node --import tsx services/<s>/src/main.ts`),
 * each on a fixed free port so its URL survives a restart. A process can be killed (-9),
 * terminated (SIGTERM, graceful) and started again; its output is kept (bounded) so a failing
 * scenario can print it. Every child this module starts is SIGKILLed when the test process
 * exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ServiceName } from '@checkout-saga/shared/internal';
import { waitFor } from '@checkout-saga/shared/testing';

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** Output kept per service: the tail is what explains a failure. */
const OUTPUT_LIMIT = 256 * 1024;
const START_TIMEOUT_MS = 120_000; // six processes and a three-node cluster starting side by side on two busy cores have taken over 60 s
const EXIT_TIMEOUT_MS = 20_000;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * A TCP port free on 127.0.0.1 now, below the kernel's ephemeral range. A service keeps its port
 * across restarts (kill -9, then start again), and a port from listen(0) is an ephemeral one,
 * which any new outgoing connection on the machine may be handed while the service is down: the
 * restart would then fail with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralRangeStart();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canListen(port)) return port;
  }
  throw new Error(`freePort: no free port between 10000 and ${low}`);
}

/** The first ephemeral port (Linux's /proc; 32768, Linux's default, elsewhere). */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Only what a process needs to start, plus `env`: nothing leaks in from the test runner's environment. */
function childEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { PATH, HOME, TMPDIR } = process.env;
  return { ...(PATH ? { PATH } : {}), ...(HOME ? { HOME } : {}), ...(TMPDIR ? { TMPDIR } : {}), ...env };
}

export class ServiceProcess {
  readonly url: string;
  private child: ChildProcess | undefined;
  private exit: Promise<number | string> | undefined;
  private log = '';
  private generation = 0;
  /** Set when the test asks the process to end (kill, SIGTERM, cleanup): any other exit is a crash. */
  private exitRequested = false;
  /** Set by stop() (cleanup): a scenario abandoned at its timeout must not start it again afterwards. */
  private retired = false;
  private readonly crashList: { code: number | string; at: string; tail: string }[] = [];

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Everything the process printed, stdout and stderr interleaved, across restarts (the tail, when long). */
  output(): string {
    return this.log;
  }

  /** Exits nobody asked for (the process died on its own), with the end of what it printed. */
  crashes(): readonly { code: number | string; at: string; tail: string }[] {
    return this.crashList;
  }

  /** Spawns the process and waits until GET /ready answers 200 (database and broker reachable, consuming). */
  async start(): Promise<void> {
    if (this.retired) throw new Error(`${this.name} was stopped for good (the scenario is being cleaned up)`);
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    const generation = ++this.generation;
    this.exitRequested = false;
    this.append(`--- ${this.name} start #${generation} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', `services/${this.name}/src/main.ts`], {
      cwd: repositoryRoot,
      env: childEnvironment({ ...this.env, PORT: String(this.port), HOST: '127.0.0.1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${this.name}`);
    live.add(child);
    this.child = child;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.append(chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.append(chunk));
    this.exit = new Promise((resolve) => {
      child.once('error', (error) => {
        this.append(`--- ${this.name} spawn error: ${error.message}\n`);
        resolve('spawn-error');
      });
      child.once('close', (code, signal) => {
        live.delete(child);
        const at = new Date().toISOString();
        if (!this.exitRequested) this.crashList.push({ code: code ?? signal ?? 'unknown', at, tail: this.log.slice(-1_500) });
        this.append(`--- ${this.name} #${generation} exited (${code ?? signal}) at ${at}${this.exitRequested ? '' : ' ON ITS OWN'}\n`);
        resolve(code ?? signal ?? 'unknown');
      });
    });
    const outcome = await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) return 'exited';
        const response = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
        return response?.status === 200 && 'ready';
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, message: `${this.name} (pid ${child.pid}) to answer GET /ready with 200` },
    );
    if (outcome === 'exited') throw new Error(`${this.name} exited during startup (${child.exitCode ?? child.signalCode}):\n${this.log.slice(-2_000)}`);
  }

  /** kill -9: no shutdown at all; whatever was in flight is the broker's and the database's problem. */
  async kill(): Promise<void> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.exitRequested = true;
    this.child!.kill('SIGKILL');
    await this.exited();
  }

  /** SIGTERM (graceful shutdown) and the exit code. */
  async terminate(): Promise<number | string> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.exitRequested = true;
    this.child!.kill('SIGTERM');
    return this.exited();
  }

  async restart(): Promise<void> {
    if (this.running) await this.kill();
    await this.start();
  }

  /** Resolves with the exit code (or signal name) of the current process, within a deadline. */
  async exited(): Promise<number | string> {
    const exit = this.exit;
    if (!exit) throw new Error(`${this.name} was never started`);
    let result: number | string | undefined;
    void exit.then((value) => (result = value));
    await waitFor(() => result !== undefined, { timeoutMs: EXIT_TIMEOUT_MS, message: `${this.name} (pid ${this.pid}) to exit` });
    return result!;
  }

  /** SIGKILL if still running, and never start again; never throws (cleanup). */
  async stop(): Promise<void> {
    this.retired = true;
    if (!this.running) return;
    this.exitRequested = true;
    this.child!.kill('SIGKILL');
    await this.exited().catch(() => {});
  }

  private append(text: string): void {
    this.log += text;
    if (this.log.length > OUTPUT_LIMIT) this.log = this.log.slice(-OUTPUT_LIMIT);
  }
}
