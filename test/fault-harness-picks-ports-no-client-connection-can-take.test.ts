/**
 * The fault suite restarts a killed service on the port it had, so that its URL survives. A
 * port from listen(0) is one of the kernel's ephemeral ports, which any new outgoing connection
 * on the machine may be handed while the service is down: its restart then fails with
 * EADDRINUSE (seen once in CI, in the kill -9 scenario). The harness picks ports below that range.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { freePort } from './faults/support/processes.ts';

test('freePort gives ports below the kernel’s ephemeral range, each free to listen on', async () => {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  for (const port of ports) {
    expect(port).toBeGreaterThanOrEqual(1024);
    expect(port).toBeLessThan(low!);
  }
});
