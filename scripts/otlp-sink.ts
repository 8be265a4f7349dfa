/**
 * `npx tsx scripts/otlp-sink.ts [port]`: an OTLP/HTTP endpoint that accepts every export and keeps
 * nothing, for measuring what tracing costs the services without a collector's own load on the
 * machine. Point the services at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (the
 * default port); Ctrl-C prints how many exports and bytes it took.
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 4318);
let exports = 0;
let bytes = 0;

const server = createServer((request, response) => {
  request.on('data', (chunk: Buffer) => (bytes += chunk.length));
  request.on('end', () => {
    if (request.method === 'POST' && request.url === '/v1/traces') exports++;
    // An empty ExportTraceServiceResponse is a full success: no bytes in protobuf, {} in JSON.
    const json = String(request.headers['content-type']).includes('json');
    response.writeHead(request.method === 'POST' ? 200 : 404, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : '');
  });
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`OTLP sink on http://127.0.0.1:${port} (POST /v1/traces)\n`));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stdout.write(`\n${exports} exports, ${(bytes / 1024 / 1024).toFixed(1)} MiB of spans\n`);
    server.close();
    process.exit(0);
  });
}
