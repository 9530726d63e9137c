import { expect } from 'chai';
import { FAULT_NODE_ARGS, ProcessCluster } from '../helpers/process-cluster.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A Jepsen-style set workload on real processes: clients put unique keys with W=2
 * through the majority side while a nemesis strikes, and record which were
 * acknowledged. Before healing, a check that the nemesis took effect: n1 sees n3 down,
 * or a write acknowledged during the strike is missing from n3 (or n3 does not answer).
 * After healing, the checkers run and print their numbers:
 *  - convergence first, before any client read (so read repair cannot be what converges
 *    them): every replica holds the same versions of every acknowledged, overwritten and
 *    deleted key within 30 s, compared with replica.inspect and brought there by anti-entropy;
 *  - no acknowledged delete comes back, on any replica, then through R=2 reads;
 *  - no acknowledged write lost (every acknowledged key reads back with R=2);
 *  - availability (at least 99% of the majority side's W=2 writes succeed).
 * With three nodes and N=3 no fallback replica exists, so no hint is stored: hinted
 * handoff is checked in test/integration/hinted-handoff.test.ts, not here.
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
    // The node lives on, and so does its gossip: only its store hangs, as a Redis stuck on a slow disk does.
    name: "SIGSTOP of a node's redis-server under its live node, then SIGCONT",
    strike: async (c) => void c.redis.get('n3')!.child.kill('SIGSTOP'),
    heal: async (c) => void c.redis.get('n3')!.child.kill('SIGCONT'),
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

/** The set workload; `duringStrike` collects, as they come, the keys acknowledged while `striking()`. */
async function workload(c: ProcessCluster, prefix: string, until: () => boolean, striking: () => boolean, duringStrike: string[]) {
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
          if (r.ok) {
            acked.push(key);
            if (striking()) duringStrike.push(key);
          }
        } catch {
          /* no reply: not acknowledged */
        }
      }
    }),
  );
  return { acked, attempted };
}

type Inspected = { versions: { d: [string, number]; v?: string }[] };

/** What shows that the nemesis struck n3, or null: n1 sees it down, or it lacks (or cannot show) a write acknowledged during the strike. */
async function strikeEffect(c: ProcessCluster, duringStrike: readonly string[]): Promise<string | null> {
  const status = await c.request<{ members: { id: string; state: string }[] }>('dynamo.node.n1.admin.status', '').catch(() => null);
  const seen = status?.members.find((m) => m.id === 'n3')?.state;
  if (seen !== undefined && seen !== 'up') return `n1 sees n3 ${seen}`;
  for (const key of duringStrike.slice(-5)) {
    const r = await c.request<Inspected & { ok: boolean }>('dynamo.node.n3.replica.inspect', { key }, 1000).catch((e: Error) => e);
    if (r instanceof Error) return `n3 does not answer (${r.message})`;
    if (!r.ok) return `n3 cannot read its store`;
    if (r.versions.length === 0) return `n3 lacks ${key}, acknowledged during the strike`;
  }
  return null;
}

describe('Jepsen-style faults (real processes)', function () {
  this.timeout(120_000);

  it('the strike check finds no effect for a nemesis that does nothing, so a no-op one cannot pass', async () => {
    const c = await new ProcessCluster(['n1', 'n2', 'n3']).start();
    try {
      let phase: 'strike' | 'done' = 'strike';
      const keys: string[] = [];
      const run = workload(
        c,
        'noop',
        () => phase === 'done',
        () => phase === 'strike',
        keys,
      );
      await waitFor(() => keys.length >= 50, 20_000, 'writes acknowledged during the no-op strike');
      // Every replica took them (W=2 acknowledges before the third copy lands): the same check as a real strike.
      await waitFor(async () => (await strikeEffect(c, keys)) === null, 5000, 'the no-op strike to show no effect', 50);
      expect(await strikeEffect(c, keys)).to.equal(null);
      phase = 'done';
      await run;
    } finally {
      await c.stop();
    }
  });

  for (const nemesis of NEMESES) {
    it(`set workload under ${nemesis.name}`, async () => {
      // Anti-entropy every 500 ms per range, so that it, not read repair, converges the replicas within the checker's 30 s.
      const c = await new ProcessCluster(['n1', 'n2', 'n3'], [...FAULT_NODE_ARGS, '--anti-entropy-interval', '500']).start();
      try {
        const doomed = Array.from({ length: 100 }, (_, i) => `del-${i}`);
        for (const key of doomed) await c.request('dynamo.kv.put', { key, value: key, w: 3 });
        let phase: 'before' | 'strike' | 'done' = 'before';
        const until = () => phase === 'done';
        const struckKeys: string[] = [];
        const run = workload(c, 'set', until, () => phase === 'strike', struckKeys);
        const regs = registers(c, until);
        const dels = (async () => {
          while (phase === 'before') await new Promise((r) => setTimeout(r, 10));
          return deletes(c, doomed, until);
        })();
        await new Promise((r) => setTimeout(r, 300));
        phase = 'strike';
        await nemesis.strike(c);
        // The fault lasts STRIKE_MS: a duration of the experiment, not a wait for a condition.
        await new Promise((r) => setTimeout(r, STRIKE_MS));
        // Still striking: the nemesis must show, or the checkers below would pass with a no-op one.
        const effect = await strikeEffect(c, struckKeys);
        phase = 'done';
        const { acked, attempted } = await run;
        const written = await regs;
        const deleted = await dels;
        await nemesis.heal(c);
        await waitFor(async () => (await Promise.all(c.ids.map((id) => c.ping(id)))).every((p) => p?.state === 'serving'), 20_000, 'all nodes serving');

        expect(effect, `${nemesis.name} had no visible effect on n3`).to.be.a('string');

        // Checker: convergence, before any client read, with none inside the poll: only anti-entropy
        // (and the writes' own replication) can bring n3 up to date.
        const convergenceSet = [...acked, ...written.keys(), ...deleted];
        const started = Date.now();
        let behind: string[] = [];
        await waitFor(
          async () => {
            behind = [];
            for (const key of convergenceSet) {
              const views = await Promise.all(c.ids.map((id) => c.request<Inspected>(`dynamo.node.${id}.replica.inspect`, { key })));
              // Replicas may hold the same siblings in another order.
              const dots = views.map((v) =>
                v.versions
                  .map((x) => x.d.join(':'))
                  .sort()
                  .join(','),
              );
              if (!dots.every((d) => d === dots[0] && d !== '')) {
                behind.push(key);
                if (behind.length >= 5) return false;
              }
            }
            return behind.length === 0;
          },
          30_000,
          'replicas to converge with no client reads',
          100,
        ).catch((e: Error) => {
          throw new Error(`${e.message}; not yet alike on every replica: ${behind.join(', ')}`);
        });
        const convergedMs = Date.now() - started;
        // Checker: no acknowledged delete holds a value on any replica, now that they agree.
        let resurrectedOnReplica = 0;
        for (const key of deleted) {
          for (const id of c.ids) {
            const v = await c.request<Inspected>(`dynamo.node.${id}.replica.inspect`, { key });
            if (v.versions.some((x) => x.v !== undefined)) resurrectedOnReplica++;
          }
        }
        // Checker: no acknowledged write lost.
        let lost = 0;
        for (const key of acked) {
          let r: { ok: boolean; values?: unknown[] } = { ok: false };
          for (let i = 0; i < 20 && !r.ok; i++) r = await c.request<typeof r>('dynamo.kv.get', { key, r: 2 }).catch(() => ({ ok: false }));
          if (!r.ok || JSON.stringify(r.values) !== JSON.stringify([key])) lost++;
        }
        // Checker: no acknowledged delete comes back through a read either.
        let resurrected = resurrectedOnReplica;
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
        // Checker: availability on the majority side.
        const availability = acked.length / attempted;
        console.log(
          `      ${nemesis.name}: ${attempted} writes, ${acked.length} acknowledged (${(availability * 100).toFixed(2)}%), ${lost} lost; ` +
            `${deleted.length} deletes, ${resurrected} resurrected; ${written.size} registers, ${strange} wrong; ${effect}; converged in ${convergedMs} ms without reads`,
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
