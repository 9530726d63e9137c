import { expect } from 'chai';
import { ProcessCluster } from '../helpers/process-cluster.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A Jepsen-style set workload on real processes: clients put unique keys with W=2
 * through the majority side while a nemesis strikes, and record which were
 * acknowledged. After healing, the checkers run and print their numbers:
 *  - no acknowledged write lost (every acknowledged key reads back with R=2);
 *  - availability (at least 99% of the majority side's W=2 writes succeed);
 *  - convergence (every replica holds the same versions of every key within 10 s,
 *    read repair included, with hints drained to zero).
 */
type Nemesis = { name: string; strike(c: ProcessCluster): Promise<void>; heal(c: ProcessCluster): Promise<void> };

const NEMESES: Nemesis[] = [
  {
    name: 'SIGKILL of a node process, then restart',
    strike: (c) => c.killNode('n3'),
    heal: (c) => c.startNode('n3'),
  },
  {
    name: "SIGKILL of a node's redis-server, then restart (AOF)",
    strike: (c) => c.killRedis('n3'),
    heal: (c) => c.restartRedis('n3'),
  },
  {
    name: 'partition n1,n2 | n3, then heal',
    strike: async (c) => {
      for (const id of c.ids) await c.request(`dynamo.node.${id}.admin.faults`, { partition: [['n1', 'n2'], ['n3']] });
    },
    heal: async (c) => {
      for (const id of c.ids) await c.request(`dynamo.node.${id}.admin.faults`, { heal: true });
    },
  },
  {
    name: 'SIGSTOP of a node longer than down-after, then SIGCONT',
    strike: async (c) => void c.nodes.get('n3')!.kill('SIGSTOP'),
    heal: async (c) => void c.nodes.get('n3')!.kill('SIGCONT'),
  },
];

const CLIENTS = 8;
const STRIKE_MS = 2000;

/** Deletes (W=2, with the read's context) of keys written before the nemesis; returns the acknowledged ones. */
async function deletes(c: ProcessCluster, keys: string[], until: () => boolean): Promise<string[]> {
  const acked: string[] = [];
  for (const key of keys) {
    if (until()) break;
    try {
      const read = await c.request<{ context: string | null }>('dynamo.node.n1.kv.get', { key, r: 2, timeoutMs: 500 });
      const r = await c.request<{ ok: boolean }>('dynamo.node.n1.kv.delete', { key, context: read.context, w: 2, timeoutMs: 500 });
      if (r.ok) acked.push(key);
    } catch {
      /* not acknowledged */
    }
  }
  return acked;
}

/** Two clients overwrite a few register keys; returns every value they tried to write, per key. */
async function registers(c: ProcessCluster, until: () => boolean): Promise<Map<string, Set<string>>> {
  const written = new Map<string, Set<string>>();
  await Promise.all(
    [0, 1].map(async (client) => {
      for (let seq = 0; !until(); seq++) {
        const key = `reg-${seq % 5}`;
        const value = `c${client}-${seq}`;
        written.set(key, (written.get(key) ?? new Set()).add(value));
        await c.request(`dynamo.node.n${client + 1}.kv.put`, { key, value, w: 2, timeoutMs: 500 }).catch(() => undefined);
      }
    }),
  );
  return written;
}

async function workload(c: ProcessCluster, prefix: string, until: () => boolean) {
  const acked: string[] = [];
  let attempted = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      while (!until()) {
        const key = `${prefix}-${client}-${next++}`;
        attempted++;
        // The majority side: n1 coordinates (or forwards within the majority).
        const subject = client % 2 ? 'dynamo.node.n1.kv.put' : 'dynamo.node.n2.kv.put';
        try {
          const r = await c.request<{ ok: boolean }>(subject, { key, value: key, w: 2, timeoutMs: 500 });
          if (r.ok) acked.push(key);
        } catch {
          /* no reply: not acknowledged */
        }
      }
    }),
  );
  return { acked, attempted };
}

describe('Jepsen-style faults (real processes)', function () {
  this.timeout(120_000);

  for (const nemesis of NEMESES) {
    it(`set workload under ${nemesis.name}`, async () => {
      const c = await new ProcessCluster(['n1', 'n2', 'n3']).start();
      try {
        const doomed = Array.from({ length: 100 }, (_, i) => `del-${i}`);
        for (const key of doomed) await c.request('dynamo.kv.put', { key, value: key, w: 3 });
        let phase: 'before' | 'strike' | 'done' = 'before';
        const until = () => phase === 'done';
        const run = workload(c, 'set', until);
        const regs = registers(c, until);
        const dels = (async () => {
          while (phase === 'before') await new Promise((r) => setTimeout(r, 10));
          return deletes(c, doomed, until);
        })();
        await new Promise((r) => setTimeout(r, 300));
        phase = 'strike';
        await nemesis.strike(c);
        await new Promise((r) => setTimeout(r, STRIKE_MS));
        phase = 'done';
        const { acked, attempted } = await run;
        const written = await regs;
        const deleted = await dels;
        await nemesis.heal(c);
        await waitFor(async () => (await Promise.all(c.ids.map((id) => c.ping(id)))).every((p) => p?.state === 'serving'), 20_000, 'all nodes serving');

        // Checker 1: no acknowledged write lost.
        let lost = 0;
        for (const key of acked) {
          let r: { ok: boolean; values?: unknown[] } = { ok: false };
          for (let i = 0; i < 20 && !r.ok; i++) r = await c.request<typeof r>('dynamo.kv.get', { key, r: 2 }).catch(() => ({ ok: false }));
          if (!r.ok || JSON.stringify(r.values) !== JSON.stringify([key])) lost++;
        }
        // Checker: no acknowledged delete comes back.
        let resurrected = 0;
        for (const key of deleted) {
          const r = await c.request<{ ok: boolean; found?: boolean }>('dynamo.kv.get', { key, r: 2 }).catch(() => ({ ok: false, found: undefined }));
          if (r.found !== false) resurrected++;
        }
        // Checker: every register reads back one of the values written to it, the same from every replica pair.
        let strange = 0;
        for (const [key, values] of written) {
          const r = await c.request<{ ok: boolean; values?: string[] }>('dynamo.kv.get', { key, r: 3 }).catch(() => ({ ok: false, values: undefined }));
          if (!r.ok || r.values?.length !== 1 || !values.has(r.values[0]!)) strange++;
        }
        // Checker 2: availability on the majority side.
        const availability = acked.length / attempted;
        // Checker 3: convergence, replica by replica, with hints drained.
        const started = Date.now();
        await waitFor(
          async () => {
            for (const key of [...acked, ...written.keys()]) {
              const views = await Promise.all(
                c.ids.map((id) => c.request<{ versions: { d: [string, number] }[] }>(`dynamo.node.${id}.replica.inspect`, { key })),
              );
              // Replicas may hold the same siblings in another order.
              const dots = views.map((v) =>
                v.versions
                  .map((x) => x.d.join(':'))
                  .sort()
                  .join(','),
              );
              if (!dots.every((d) => d === dots[0] && d !== '')) {
                await c.request('dynamo.kv.get', { key, r: 3 }).catch(() => undefined);
                return false;
              }
            }
            return (await Promise.all(c.ids.map((id) => c.ping(id)))).every((p) => p?.hints.pending === 0);
          },
          10_000,
          'replicas to converge',
        );
        console.log(
          `      ${nemesis.name}: ${attempted} writes, ${acked.length} acknowledged (${(availability * 100).toFixed(2)}%), ${lost} lost; ` +
            `${deleted.length} deletes, ${resurrected} resurrected; ${written.size} registers, ${strange} wrong; converged in ${Date.now() - started} ms`,
        );
        expect(lost).to.equal(0);
        expect(resurrected).to.equal(0);
        expect(strange).to.equal(0);
        expect(deleted.length).to.be.greaterThan(0);
        expect(availability).to.be.at.least(0.99);
      } finally {
        await c.stop();
      }
    });
  }
});
