// The machines' modules hold injectable classes too: their decorators need the metadata polyfill loaded first.
import 'reflect-metadata';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { antiEntropyMachine } from '../../actors/anti-entropy/anti-entropy-machine.js';
import { getCoordinatorMachine, putCoordinatorMachine } from '../../actors/coordinator/coordinator-machine.js';
import { gossiperMachine } from '../../actors/gossiper/gossiper-machine.js';
import { hintedHandoffMachine } from '../../actors/node/hinted-handoff-machine.js';
import { reaperMachine } from '../../actors/node/reaper-machine.js';
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
  reaper: reaperMachine,
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
  /**
   * what a browser must show to see the console: in the URL (`?token=`) once, then a
   * cookie. null: no token (a console that only this machine's users can reach)
   */
  readonly token: string | null;
}

/** A token for a console: 128 random bits. */
export function newConsoleToken(): string {
  return randomBytes(16).toString('base64url');
}

const COOKIE = 'dynamo_console_token';
/** Answers without a token, for health checks: it says only that the console serves. */
const HEALTH_PATH = '/healthz';

function sameToken(given: unknown, token: string): boolean {
  // A query may repeat a parameter (an array) or lack it: only one string can match.
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === COOKIE) return rest.join('=');
  }
  return undefined;
}

export interface ConsoleServer {
  /** where a browser opens the console (with its token, if it has one) */
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
  const { token } = options;
  if (token !== null) {
    // Every route, the WebSocket too: the token in the query (then kept in a cookie), or the cookie.
    // All but /healthz, which tells a container engine that the console serves, and nothing else.
    app.addHook('onRequest', async (req, reply) => {
      if (req.routeOptions.url === HEALTH_PATH) return;
      const query = (req.query as Record<string, unknown>)['token'];
      if (sameToken(query, token)) return void reply.header('set-cookie', `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`);
      if (sameToken(cookieToken(req.headers.cookie), token)) return;
      return reply
        .code(401)
        .type('text/plain')
        .send('This console wants its token: open the address that dynamo up or dynamo console printed (it ends in ?token=...).\n');
    });
  }
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 } });
  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/' });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: '/vendor/uplot/',
    decorateReply: false,
    allowedPath: (p) => /^\/?uPlot\.(iife\.min\.js|min\.css)$/.test(p),
  });
  app.get(HEALTH_PATH, async () => ({ ok: true }));
  app.get('/api/charts', async () => machineCharts());
  app.get('/api/state', async () => ({ version: VERSION, prefix: options.prefix, ...(await bridge.current()) }));
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
  const base = address.replace('http://[::1]', 'http://localhost');
  return {
    url: token === null ? base : `${base}/?token=${token}`,
    bridge,
    close: async () => {
      bridge.stop();
      await app.close();
    },
  };
}
