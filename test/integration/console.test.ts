import 'reflect-metadata';
import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { newConsoleToken, startConsole, type ConsoleServer } from '../../src/console/server.js';
import type { RunTrace, TransitionTrace } from '../../src/inspect/trace.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { ProcessCluster } from '../helpers/process-cluster.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Screenshots a run leaves behind, for a person to look at (ignored by git). */
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
/** Flags for a root, offline, headless Chromium (its background networking is refused on these machines). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const DOWN_AFTER_MS = 600;

describe('web console (real processes, headless Chromium)', function () {
  this.timeout(120_000);
  let cluster: ProcessCluster;
  let watcher: NatsTransport;
  let console_: ConsoleServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it (sudo apt-get install -y chromium) or set CHROMIUM_PATH`);
    cluster = await new ProcessCluster(
      ['n1', 'n2', 'n3'],
      ['--gossip-interval', '100', '--suspect-after', '300', '--down-after', String(DOWN_AFTER_MS), '--inspect'],
    ).start();
    watcher = await NatsTransport.connect(cluster.nats.url, 'console-test');
    // With a token, as dynamo up and dynamo console start it: the browser opens the URL that carries it.
    console_ = await startConsole({ transport: watcher, prefix: 'dynamo', port: 0, host: '127.0.0.1', pollMs: 250, token: newConsoleToken() });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1500, height: 1800 } });
  });
  after(async () => {
    await browser?.close();
    await console_?.close();
    await watcher?.close();
    await cluster?.stop();
  });

  it("with --inspect, nodes publish their actors' transitions and sampled runs on the trace subjects", async () => {
    const transitions: TransitionTrace[] = [];
    const runs: RunTrace[] = [];
    const sub = watcher.subscribe('dynamo.trace.>', (m) => {
      const t = decodeJson<TransitionTrace | RunTrace>(m.data);
      if (t.type === 'run') runs.push(t);
      else transitions.push(t);
    });
    await watcher.flush();
    try {
      const put = await cluster.request<{ ok: boolean }>('dynamo.kv.put', { key: 'trace:probe', value: 1 });
      expect(put.ok).to.equal(true);
      await waitFor(() => runs.some((r) => r.key === 'trace:probe'), 10_000, 'the put in a run trace');
      await waitFor(() => transitions.some((t) => t.actor === 'gossiper'), 10_000, 'a gossiper transition');
      const run = runs.find((r) => r.key === 'trace:probe')!;
      expect(run).to.include({ op: 'put', outcome: 'ok', bucket: 'default' });
      expect(run.steps.filter((s) => s.kind === 'phase').map((s) => s.name)).to.deep.equal(['executingLocal', 'waitingRemote', 'done']);
      expect(run.steps.filter((s) => s.kind === 'ack')).to.have.length.of.at.least(1);
    } finally {
      sub.unsubscribe();
    }
  });

  it("shows three nodes on the ring and in the members table, with each node's actors in their current state", async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(console_.url);
    await page.waitForFunction('document.querySelectorAll(\'#members tbody tr[data-state="up"]\').length === 3', null, { timeout: 15_000 });
    const ringNodes = await page.$$eval('#ring path[data-node]', (ps) => [...new Set(ps.map((p) => p.getAttribute('data-node')))].sort());
    expect(ringNodes).to.deep.equal(['n1', 'n2', 'n3']);
    expect(await page.$$eval('#members tbody tr', (rows) => rows.map((r) => r.getAttribute('data-node')))).to.deep.equal(['n1', 'n2', 'n3']);
    await page.waitForSelector('.actor[data-actor="node"] svg .st.active[data-state="node.online.serving"]', { timeout: 10_000 });
    expect(await page.textContent('.actor[data-actor="node"] .now')).to.equal('online.serving');
    expect(await page.$$eval('.actor', (cards) => cards.map((c) => c.getAttribute('data-actor')))).to.deep.equal([
      'node',
      'gossiper',
      'anti-entropy',
      'hinted-handoff',
      'reaper',
    ]);
    expect(errors).to.deep.equal([]);
  });

  it('shows a put made now in the coordinator feed, phase by phase with its replica acks', async () => {
    const put = await cluster.request<{ ok: boolean }>('dynamo.kv.put', { key: 'console:probe', value: ['from the test'] });
    expect(put.ok).to.equal(true);
    const item = await page.waitForSelector('#feed li[data-key="console:probe"]', { timeout: 10_000 });
    const text = (await item.textContent()) ?? '';
    expect(text).to.contain('put default/console:probe');
    expect(text).to.contain('ok');
    expect(text).to.match(/n\d ack/);
    expect(await item.$$eval('.timeline .phase', (ps) => ps.map((p) => p.textContent))).to.deep.equal(['executingLocal', 'waitingRemote', 'done']);
    await waitFor(() => page.$$eval('#run-chart svg .st.visited', (s) => s.length > 0), 5000, 'the run chart to light its path');
  });

  it('shows a killed node down within the failure-detection time, and saves a screenshot', async () => {
    const killedAt = Date.now();
    await cluster.killNode('n3');
    await page.waitForSelector('#members tbody tr[data-node="n3"][data-state="down"]', { timeout: 15_000 });
    const seenAfterMs = Date.now() - killedAt;
    // down-after, plus a gossip round or two, plus the console's own poll.
    expect(seenAfterMs).to.be.below(DOWN_AFTER_MS + 5000);
    expect(await page.textContent('#members tbody tr[data-node="n3"] td.state')).to.equal('down');
    expect(await page.textContent('#summary')).to.match(/^2\/3 nodes up/);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'console.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).to.equal(true);
    process.stdout.write(`      (n3 shown down ${seenAfterMs} ms after SIGKILL; screenshot: ${shot})\n`);
  });
});
