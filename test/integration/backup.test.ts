import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCAN_START } from '../../src/storage/storage.js';
import { runCli } from '../helpers/cli.js';
import { RealCluster } from '../helpers/real-cluster.js';

const KEYS = 10_000;

type Result = { ok: boolean; found?: boolean; values?: unknown[] };
type Multi = { ok: boolean; results: Result[] };

/** Every key's read, with r=3, as a get would answer it (values sorted, so sibling order does not matter). */
async function readAll(c: RealCluster, bucket: string, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const r = await c.request<Multi>('dynamo.kv.mget', { bucket, keys: keys.slice(i, i + 1000), r: 3 }, 30_000);
    expect(r.ok).to.equal(true);
    for (const x of r.results) out.push(JSON.stringify([x.ok, x.found, (x.values ?? []).map((v) => JSON.stringify(v)).sort()]));
  }
  return out;
}

/** A digest of everything every node of `c` stores. */
async function digest(c: RealCluster): Promise<string> {
  const h = createHash('sha256');
  for (const id of c.ids) {
    const s = c.storage(id);
    try {
      const rows: string[] = [];
      for (let cursor = SCAN_START; ; ) {
        const page = await s.scan(cursor, 1000);
        const raws = await s.readRawMany(page.keys);
        rows.push(...page.keys.map((k, i) => `${k.bucket}/${k.key}=${raws[i]}`));
        cursor = page.cursor;
        if (cursor === SCAN_START) break;
      }
      h.update(`${id}:${rows.sort().join('\n')}`);
    } finally {
      await s.close();
    }
  }
  return h.digest('hex');
}

describe('backup and restore (real nats-server and redis-servers, the CLI)', function () {
  this.timeout(300_000);
  let a: RealCluster;
  let b: RealCluster;
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  const sibKeys = Array.from({ length: 100 }, (_, i) => `s${i}`);

  before(async () => {
    a = await new RealCluster(['n1', 'n2', 'n3']).start();
    for (let i = 0; i < KEYS; i += 1000) {
      const r = await a.request<Multi>('dynamo.kv.mput', { items: keys.slice(i, i + 1000).map((key, j) => ({ key, value: { i: i + j } })), w: 3 }, 30_000);
      expect(r.results.every((x) => x.ok)).to.equal(true);
    }
    for (let i = 0; i < 200; i++) expect((await a.request<Result>('dynamo.kv.delete', { key: `k${i}`, w: 3 })).ok).to.equal(true);
    // Concurrent writes without a context, through two nodes: two siblings a key.
    expect((await a.request<Result>('dynamo.admin.bucket.set', { bucket: 'sib', resolver: 'siblings' })).ok).to.equal(true);
    for (const key of sibKeys) {
      for (const node of ['n1', 'n2'])
        expect((await a.request<Result>(`dynamo.node.${node}.kv.put`, { bucket: 'sib', key, value: node, w: 3 })).ok).to.equal(true);
    }
    const sib = await readAll(a, 'sib', sibKeys);
    expect(sib.every((x) => x === JSON.stringify([true, true, ['"n1"', '"n2"']]))).to.equal(true);
    b = await new RealCluster(['m1', 'm2', 'm3', 'm4']).start();
    expect((await b.request<Result>('dynamo.admin.bucket.set', { bucket: 'sib', resolver: 'siblings' })).ok).to.equal(true);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('backs up 10k keys with siblings and tombstones from 3 nodes, and a 4-node cluster restored from it reads back the same, key by key', async () => {
    const file = join(a.dir, 'backup.ndjson');
    const backup = await runCli(['backup', file], a.nats.url);
    expect(backup.code, backup.err + backup.out).to.equal(0);
    expect(backup.out).to.match(/backed up \d+ records/);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    // Every replica's copy: 3 of each key (N=3 on 3 nodes), tombstones and siblings with their clocks.
    expect(lines).to.have.length(3 * (KEYS + sibKeys.length));
    const parsed = lines.map((l) => JSON.parse(l) as { b: string; k: string; x: { d: unknown; c: unknown; v?: string }[] });
    expect(parsed.filter((p) => p.b === 'default' && p.k === 'k5')[0]?.x[0])
      .to.include.keys('d', 'c', 't')
      .and.not.have.property('v');
    expect(parsed.filter((p) => p.b === 'sib' && p.k === 's0')[0]?.x).to.have.length(2);

    const restore = await runCli(['restore', file], b.nats.url);
    expect(restore.code, restore.err + restore.out).to.equal(0);
    expect(await readAll(b, 'default', keys)).to.deep.equal(await readAll(a, 'default', keys));
    expect(await readAll(b, 'sib', sibKeys)).to.deep.equal(await readAll(a, 'sib', sibKeys));

    // Restoring twice changes nothing.
    const before = await digest(b);
    expect((await runCli(['restore', file], b.nats.url)).code).to.equal(0);
    expect(await digest(b)).to.equal(before);
  });

  it('leaves out a node that is stopped, reads the others whole, and names the one it did not read', async () => {
    await a.stopNode('n3');
    const file = join(a.dir, 'two.ndjson');
    const backup = await runCli(['backup', file], a.nats.url);
    expect(backup.code, backup.err + backup.out).to.equal(0);
    expect(backup.err).to.match(/not read: n3 /);
    expect(backup.out).to.match(/from n1, n2 to /);
    expect(readFileSync(file, 'utf8').trim().split('\n')).to.have.length(2 * (KEYS + sibKeys.length));
  });

  it('refuses bad restore input and stores nothing of it', async () => {
    const before = await digest(b);
    for (const body of [
      {},
      { items: [] },
      { items: [{ b: 'x', k: 'y', x: [{ d: ['n1.a', 1], c: {}, t: 1, v: 5 }] }] },
      { items: [{ b: 'a/b', k: 'y', x: [] }] },
    ]) {
      const r = await b.request<{ ok: boolean; error?: { code: string } }>('dynamo.admin.restore', body);
      expect(r.error?.code, JSON.stringify(body)).to.equal('BAD_REQUEST');
    }
    expect((await b.request<{ ok: boolean; error?: { code: string } }>('dynamo.node.m1.admin.backup', { cursor: 'x' })).error?.code).to.equal('BAD_REQUEST');
    const notJson = join(a.dir, 'bad.ndjson');
    writeFileSync(notJson, 'not json\n');
    const r = await runCli(['restore', notJson], b.nats.url);
    expect(r.code).to.equal(1);
    expect(r.err + r.out).to.match(/line 1 is not JSON/);
    expect(await digest(b)).to.equal(before);
  });
});
