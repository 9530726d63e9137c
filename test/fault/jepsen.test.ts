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
        let phase: 'before' | 'strike' | 'done' = 'before';
        const run = workload(c, 'set', () => phase === 'done');
        await new Promise((r) => setTimeout(r, 300));
        phase = 'strike';
        await nemesis.strike(c);
        await new Promise((r) => setTimeout(r, STRIKE_MS));
        phase = 'done';
        const { acked, attempted } = await run;
        await nemesis.heal(c);
        await waitFor(async () => (await Promise.all(c.ids.map((id) => c.ping(id)))).every((p) => p?.state === 'serving'), 20_000, 'all nodes serving');

        // Checker 1: no acknowledged write lost.
        let lost = 0;
        for (const key of acked) {
          let r: { ok: boolean; values?: unknown[] } = { ok: false };
          for (let i = 0; i < 20 && !r.ok; i++) r = await c.request<typeof r>('dynamo.kv.get', { key, r: 2 }).catch(() => ({ ok: false }));
          if (!r.ok || JSON.stringify(r.values) !== JSON.stringify([key])) lost++;
        }
        // Checker 2: availability on the majority side.
        const availability = acked.length / attempted;
        // Checker 3: convergence, replica by replica, with hints drained.
        const started = Date.now();
        await waitFor(
          async () => {
            for (const key of acked) {
              const views = await Promise.all(c.ids.map((id) => c.request<{ versions: { d: [string, number] }[] }>(`dynamo.node.${id}.replica.inspect`, { key })));
              // Replicas may hold the same siblings in another order.
              const dots = views.map((v) => v.versions.map((x) => x.d.join(':')).sort().join(','));
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
          `      ${nemesis.name}: ${attempted} writes, ${acked.length} acknowledged (${(availability * 100).toFixed(2)}%), ${lost} lost, converged in ${Date.now() - started} ms`,
        );
        expect(lost).to.equal(0);
        expect(availability).to.be.at.least(0.99);
      } finally {
        await c.stop();
      }
    });
  }
});
