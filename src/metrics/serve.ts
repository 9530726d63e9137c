import { createServer } from 'node:http';
import { collectDefaultMetrics } from 'prom-client';
import type { NodeMetrics } from './metrics.js';

export interface MetricsEndpoint {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serve a node's metrics for Prometheus at http://HOST:PORT/metrics (port 0: any free
 * one), with the process's own CPU, memory and event-loop figures beside them.
 */
export function serveMetrics(metrics: NodeMetrics, port: number, host: string): Promise<MetricsEndpoint> {
  collectDefaultMetrics({ register: metrics.registry, prefix: 'dynamo_' });
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`could not collect metrics: ${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as { port: number };
      resolve({ url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
