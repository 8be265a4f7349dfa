/*
 * A three-node RabbitMQ cluster of the test's own, run from the machine's RabbitMQ
 * installation, never touching the machine's node (its ports 5672/25672/15672, its node
 * name, cookie, data, logs or config). What that takes:
 *
 * - the scripts under /usr/lib/rabbitmq/bin are called directly: the /usr/sbin wrappers switch
 *   to the rabbitmq user, its home and its cookie, and write the machine broker's log;
 * - /etc/rabbitmq/rabbitmq-env.conf names the machine's node: RABBITMQ_CONF_ENV_FILE points at
 *   the cluster's own file instead;
 * - each node has its own AMQP and Erlang distribution ports (the default distribution port,
 *   AMQP + 20000, would be the machine node's), its own enabled_plugins file (none: no
 *   management listener on 15672), config file and data directory, an absolute memory
 *   watermark (the relative default would count the machine's RAM three times), and the
 *   cluster's own HOME with its own Erlang cookie;
 * - the cluster forms by itself at start (classic config peer discovery), as in
 *   docker-compose.cluster.yml.
 *
 * Each node runs in its own process group, so kill -9 takes the Erlang VM with the script
 * that started it. Everything lives in one temporary directory, removed with the cluster.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { waitFor } from '@checkout-saga/shared/testing';
import { freePort } from './processes.ts';

const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
const NODE_START_TIMEOUT_MS = 90_000;
const run = promisify(execFile);

const live = new Set<ChildProcess>();
const directories = new Set<string>();
process.once('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

export interface ClusterNode {
  /** 1, 2 or 3. */
  index: number;
  /** The Erlang node name, such as cs1a2b3c-1@localhost. */
  name: string;
  amqpPort: number;
  url: string;
  readonly running: boolean;
  /** kill -9: the VM is gone without a word to its peers or clients. */
  kill(): Promise<void>;
  /** SIGTERM: the node shuts down in order (it may take a few seconds). */
  stop(): Promise<void>;
  /** Starts it again on the same data (it rejoins the cluster) and waits until it takes AMQP connections. */
  start(): Promise<void>;
}

export interface RabbitCluster {
  nodes: ClusterNode[];
  /** Every node's URL, comma-separated: RABBITMQ_URL for a service. */
  rabbitmqUrl: string;
  /** rabbitmqctl (or another CLI script) against a running node; resolves with its stdout. */
  cli(script: 'rabbitmqctl' | 'rabbitmq-queues', args: readonly string[]): Promise<string>;
  /** Leader and members of each quorum queue whose name starts with `prefix`. */
  quorumQueues(prefix: string): Promise<{ name: string; leader: string; members: string[] }[]>;
  /** What the nodes printed, for a failure report (the tail of each). */
  output(): string;
  /** Kills every node and removes the directory. Never throws. */
  remove(): Promise<void>;
}

export async function startRabbitCluster(label: string): Promise<RabbitCluster> {
  const id = `cs${Math.random().toString(36).slice(2, 8)}`;
  const base = mkdtempSync(path.join(tmpdir(), `checkout-saga-${label}-`));
  directories.add(base);
  const home = path.join(base, 'home');
  mkdirSync(home);
  // The cookie is the cluster's alone; Erlang refuses a cookie file others can read.
  writeFileSync(path.join(home, '.erlang.cookie'), `${id}-${Math.random().toString(36).slice(2)}`);
  chmodSync(path.join(home, '.erlang.cookie'), 0o400);
  const envFile = path.join(base, 'rabbitmq-env.conf');
  // The machine's file sets NODENAME; this one only keeps Erlang's port mapper and distribution on loopback, as there.
  writeFileSync(envFile, 'ERL_EPMD_ADDRESS=127.0.0.1\n');

  const specs = await Promise.all(
    [1, 2, 3].map(async (index) => ({ index, name: `${id}-${index}@localhost`, amqpPort: await freePort(), distPort: await freePort(), dir: path.join(base, `node${index}`) })),
  );
  const baseEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LC_ALL: 'C.UTF-8',
    RABBITMQ_CONF_ENV_FILE: envFile,
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };

  const nodes = specs.map((spec) => {
    mkdirSync(spec.dir);
    const config = path.join(spec.dir, 'rabbitmq.conf');
    writeFileSync(
      config,
      [
        `listeners.tcp.default = 127.0.0.1:${spec.amqpPort}`,
        'loopback_users = none',
        'vm_memory_high_watermark.absolute = 256MB',
        'disk_free_limit.absolute = 50MB',
        // New queues' leaders spread over the nodes (not all on the node the declaring client uses), as a real cluster's would.
        'queue_leader_locator = balanced',
        'cluster_formation.peer_discovery_backend = classic_config',
        ...specs.map((peer) => `cluster_formation.classic_config.nodes.${peer.index} = ${peer.name}`),
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(spec.dir, 'enabled_plugins'), '[].\n');
    const env = {
      ...baseEnv,
      RABBITMQ_NODENAME: spec.name,
      RABBITMQ_NODE_PORT: String(spec.amqpPort),
      RABBITMQ_DIST_PORT: String(spec.distPort),
      RABBITMQ_CONFIG_FILE: config,
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(spec.dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(spec.dir, 'data'),
      RABBITMQ_LOG_BASE: path.join(spec.dir, 'log'),
      RABBITMQ_PID_FILE: path.join(spec.dir, 'rabbitmq.pid'),
      RABBITMQ_LOGS: '-',
      // One scheduler each: three nodes share the machine's cores with the services. Distribution on loopback only, as the machine's node.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 -kernel inet_dist_use_interface {127,0,0,1}',
    };
    const logFile = path.join(spec.dir, 'output.log');
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    const url = `amqp://guest:guest@127.0.0.1:${spec.amqpPort}`;

    const node: ClusterNode = {
      index: spec.index,
      name: spec.name,
      amqpPort: spec.amqpPort,
      url,
      get running() {
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      async start() {
        if (node.running) throw new Error(`node ${spec.name} is already running`);
        const fd = openSync(logFile, 'a');
        const started = spawn(path.join(RABBITMQ_BIN, 'rabbitmq-server'), [], { env, detached: true, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        child = started;
        live.add(started);
        exited = new Promise((resolve) => started.once('exit', () => resolve()));
        void exited.then(() => live.delete(started));
        await waitFor(
          async () => {
            if (started.exitCode !== null || started.signalCode !== null) throw new Error(`node ${spec.name} exited while starting:\n${tail(logFile)}`);
            const connection = await amqp.connect(url).catch(() => undefined);
            await connection?.close().catch(() => {});
            return connection !== undefined;
          },
          { timeoutMs: NODE_START_TIMEOUT_MS, intervalMs: 250, message: `RabbitMQ node ${spec.name} to take AMQP connections on ${spec.amqpPort}` },
        );
      },
      async kill() {
        if (!child) return;
        killGroup(child, 'SIGKILL');
        await exited;
      },
      async stop() {
        if (!child || !node.running) return;
        // The script traps TERM and stops the VM in order; the group kill is the backstop.
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
        killGroup(child, 'SIGKILL');
        await exited;
      },
    };
    return Object.assign(node, { logFile });
  });

  const cli = async (script: 'rabbitmqctl' | 'rabbitmq-queues', args: readonly string[]) => {
    const target = nodes.find((node) => node.running);
    if (!target) throw new Error('no node of the cluster is running');
    const { stdout } = await run(path.join(RABBITMQ_BIN, script), ['-n', target.name, ...args], { env: baseEnv, timeout: 60_000 });
    return stdout;
  };
  const remove = async () => {
    await Promise.all(nodes.map((node) => node.kill().catch(() => {})));
    rmSync(base, { recursive: true, force: true });
    directories.delete(base);
  };

  try {
    // Side by side: classic config discovery lets whichever boots first form the cluster and the others join it.
    await Promise.all(nodes.map((node) => node.start()));
    await waitFor(
      async () => {
        const running = await cli('rabbitmqctl', ['eval', 'length(rabbit_nodes:all_running()).']).catch(() => '0');
        return Number(running.trim()) === nodes.length;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, message: 'the three nodes to form one cluster' },
    );
  } catch (error) {
    console.error(`[cluster ${label}] start failed: ${(error as Error).message}\n${nodes.map((node) => `== ${node.name}\n${tail(node.logFile)}`).join('\n')}`);
    await remove();
    throw error;
  }

  return {
    nodes,
    rabbitmqUrl: nodes.map((node) => node.url).join(','),
    cli,
    quorumQueues: async (prefix) => {
      const json = await cli('rabbitmqctl', ['list_queues', 'name', 'leader', 'members', '--formatter', 'json', '--quiet']);
      const rows = JSON.parse(json) as { name: string; leader: string; members: string[] }[];
      return rows.filter((row) => row.name.startsWith(prefix));
    },
    output: () => nodes.map((node) => `== ${node.name} (port ${node.amqpPort})\n${tail(node.logFile)}`).join('\n'),
    remove,
  };
}

function tail(file: string, characters = 3_000): string {
  try {
    return readFileSync(file, 'utf8').slice(-characters);
  } catch {
    return '(no output)';
  }
}
