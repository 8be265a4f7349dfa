/**
 * docker-compose.cluster.yml, checked without Docker: laid over docker-compose.yml it gives
 * three RabbitMQ nodes that name each other in the classic-config peer list and share one
 * cookie, each with its own data volume and host name, and points every service that talks to
 * RabbitMQ at all three nodes, with a quorum replica on each.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { parse } from 'yaml';
import { brokerUrls } from '@checkout-saga/shared/internal';

interface Service {
  hostname?: string;
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  configs?: { source: string; target: string }[];
  depends_on?: Record<string, { condition?: string }>;
}
interface Compose {
  services: Record<string, Service>;
  configs?: Record<string, { content?: string }>;
}

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => parse(readFileSync(join(root, file), 'utf8'), { merge: true }) as Compose;
const base = read('docker-compose.yml');
const cluster = read('docker-compose.cluster.yml');
const nodes = ['rabbitmq', 'rabbitmq-2', 'rabbitmq-3'];

test('three nodes, each naming the same three peers, with its own host name and data volume and one shared cookie', () => {
  const config = cluster.configs?.['rabbitmq-cluster']?.content ?? '';
  expect(config).toMatch(/^cluster_formation\.peer_discovery_backend = classic_config$/m);
  const peers = [...config.matchAll(/^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)$/gm)].map((match) => match[1]);
  expect(peers).toEqual(nodes);
  const volumes = new Set<string>();
  for (const name of nodes) {
    const node = cluster.services[name]!;
    expect(node.hostname, `${name}: its host name is its node name`).toBe(name);
    expect(node.configs?.map((entry) => entry.source), `${name} reads the cluster config`).toEqual(['rabbitmq-cluster']);
    expect(node.environment?.RABBITMQ_CLUSTER_COOKIE, `${name}: the shared cookie`).toBe(cluster.services.rabbitmq!.environment?.RABBITMQ_CLUSTER_COOKIE);
    expect(node.entrypoint?.join(' '), `${name} writes the cookie before starting`).toMatch(/\.erlang\.cookie.*exec docker-entrypoint\.sh rabbitmq-server/);
    const data = (node.volumes ?? base.services[name]?.volumes ?? []).find((volume) => volume.endsWith(':/var/lib/rabbitmq'));
    expect(data, `${name} keeps its data on a volume`).toBeDefined();
    volumes.add(data!);
  }
  expect(volumes.size, 'one data volume per node').toBe(3);
});

test('every service that talks to RabbitMQ is given all three nodes, waits for them, and asks for a replica on each', () => {
  const clients = Object.entries(base.services).filter(([, service]) => service.environment && 'RABBITMQ_URL' in service.environment);
  expect(clients.map(([name]) => name).sort()).toEqual(['inventory', 'notification', 'order', 'payment']);
  for (const [name] of clients) {
    const environment = cluster.services[name]?.environment ?? {};
    const hosts = brokerUrls(String(environment.RABBITMQ_URL)).map((url) => new URL(url).hostname);
    expect(hosts, `${name}: RABBITMQ_URL`).toEqual(nodes);
    expect(String(environment.QUORUM_INITIAL_GROUP_SIZE), `${name}: QUORUM_INITIAL_GROUP_SIZE`).toBe('3');
    for (const node of nodes) expect(cluster.services[name]?.depends_on?.[node]?.condition, `${name} waits for ${node}`).toBe('service_healthy');
  }
});
