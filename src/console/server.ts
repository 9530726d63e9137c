// The machines' modules hold injectable classes too: their decorators need the metadata polyfill loaded first.
import 'reflect-metadata';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { antiEntropyMachine } from '../../actors/anti-entropy/anti-entropy-machine.js';
import { getCoordinatorMachine, putCoordinatorMachine } from '../../actors/coordinator/coordinator-machine.js';
import { gossiperMachine } from '../../actors/gossiper/gossiper-machine.js';
import { hintedHandoffMachine } from '../../actors/node/hinted-handoff-machine.js';
import { nodeMachine } from '../../actors/node/node-machine.js';
import type { Transport } from '../transport/transport.js';
import { VERSION } from '../version.js';
import { ConsoleBridge } from './bridge.js';
import { chartOf, layOut, type Chart } from './statecharts.js';

/** Where the page's files are: copied beside the compiled server by the build. */
const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');
/** The chart library, served from its package so the page works offline. */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));
/** Messages a slow browser may have queued before it is dropped (it reconnects and starts afresh). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Each actor of a node, and the machine that runs it: what the page draws. */
const MACHINES = {
  node: nodeMachine,
  gossiper: gossiperMachine,
  'anti-entropy': antiEntropyMachine,
  'hinted-handoff': hintedHandoffMachine,
  'get-coordinator': getCoordinatorMachine,
  'put-coordinator': putCoordinatorMachine,
};

let charts: Promise<Record<string, Chart>> | null = null;
/** The machines' layouts, computed once per process (they never change while it runs). */
export function machineCharts(): Promise<Record<string, Chart>> {
  charts ??= Promise.all(Object.entries(MACHINES).map(async ([name, m]) => [name, await layOut(chartOf(m))] as const)).then(Object.fromEntries);
  return charts;
}

export interface ConsoleOptions {
  readonly transport: Transport;
  readonly prefix: string;
  readonly port: number;
  readonly host: string;
  /** the port is taken: listen on a free one instead of failing (dynamo up) */
  readonly anyPortIfTaken?: boolean;
  readonly pollMs?: number;
}

export interface ConsoleServer {
  readonly url: string;
  readonly bridge: ConsoleBridge;
  close(): Promise<void>;
}

/**
 * The web console: a static page, the state charts of the node's machines, and a
 * WebSocket that carries the bridge's messages to the page as they happen.
 */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  if (!existsSync(join(PUBLIC_DIR, 'index.html'))) throw new Error(`the console's page is missing from ${PUBLIC_DIR}: rebuild with npm run build`);
  const bridge = new ConsoleBridge(options.transport, options.prefix, options.pollMs);
  const app = Fastify({ logger: false });
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 } });
  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/' });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: '/vendor/uplot/',
    decorateReply: false,
    allowedPath: (p) => /^\/?uPlot\.(iife\.min\.js|min\.css)$/.test(p),
  });
  app.get('/api/charts', async () => machineCharts());
  app.get('/api/state', async () => ({ version: VERSION, prefix: options.prefix, ...bridge.snapshot() }));
  app.register(async (scoped) => {
    scoped.get('/ws', { websocket: true }, (socket) => {
      const send = (m: unknown) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) return void socket.terminate();
        socket.send(JSON.stringify(m));
      };
      send({ type: 'hello', version: VERSION, prefix: options.prefix, state: bridge.snapshot() });
      const off = bridge.onMessage(send);
      socket.on('close', off);
      socket.on('message', () => {}); // the page only listens
    });
  });
  await machineCharts();
  await bridge.start();
  let address: string;
  try {
    address = await app.listen({ port: options.port, host: options.host });
  } catch (e) {
    if (!(options.anyPortIfTaken && (e as NodeJS.ErrnoException).code === 'EADDRINUSE')) {
      bridge.stop();
      await app.close();
      throw e;
    }
    address = await app.listen({ port: 0, host: options.host });
  }
  return {
    url: address.replace('http://[::1]', 'http://localhost'),
    bridge,
    close: async () => {
      bridge.stop();
      await app.close();
    },
  };
}
