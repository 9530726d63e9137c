/**
 * The seed's shopping cart, partitioned, under three resolvers side by side.
 *
 * Alice's cart holds milk and eggs on all three replicas. The network splits n1,n2 | n3.
 * On the n1,n2 side she removes the milk and adds jam; on the n3 side (a second
 * device) she adds bread. The network heals and the cart is read with R=3. Last-write-wins keeps one
 * side's cart and loses the other's change; a union of arrays keeps both additions
 * but brings the milk back (Dynamo's known flaw); the observed-remove set keeps
 * both changes.
 *
 * Run it with `npm run demo:cart` (examples/cart-demo.ts).
 */
import { subjects } from '../src/protocol/subjects.js';
import { decodeJson, type Transport } from '../src/transport/transport.js';

type Reply = { ok: boolean; values?: unknown[]; context?: string | null; error?: { code: string; message: string } };

export interface CartOutcome {
  readonly resolver: 'lww' | 'union' | 'orset';
  readonly majoritySide: unknown;
  readonly minoritySide: unknown;
  readonly afterHeal: unknown;
}

const RESOLVERS = ['lww', 'union', 'orset'] as const;

/** Run the story on a cluster of n1, n2, n3 whose nodes allow faults; resolves to each resolver's outcome. */
export async function cartStory(t: Transport, prefix = 'dynamo', say: (line: string) => void = () => {}): Promise<CartOutcome[]> {
  const s = subjects(prefix);
  const ask = async (subject: string, body: unknown, timeoutMs = 5000): Promise<Reply> =>
    decodeJson<Reply>(await t.request(subject, JSON.stringify(body), timeoutMs));
  const must = async (subject: string, body: unknown): Promise<Reply> => {
    const r = await ask(subject, body);
    if (!r.ok) throw new Error(`${subject} ${JSON.stringify(body)} failed: ${r.error?.code} ${r.error?.message}`);
    return r;
  };
  const bucket = (resolver: string) => `cart-${resolver}`;
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const sees = async (node: string, other: string, state: string) => {
    const st = decodeJson<{ members: { id: string; state: string }[] }>(await t.request(s.nodeStatus(node), '', 5000));
    return st.members.find((m) => m.id === other)?.state === state;
  };
  const faults = async (body: unknown) => {
    for (const n of ['n1', 'n2', 'n3']) await must(s.nodeFaults(n), body);
  };

  say('1. every cart holds milk and eggs, on all three replicas');
  for (const r of RESOLVERS) {
    await must(s.bucketSet, { bucket: bucket(r), resolver: r });
    if (r === 'orset') await must(s.nodeKv('n1', 'put'), { bucket: bucket(r), key: 'alice', op: { add: ['milk', 'eggs'] }, w: 3 });
    else await must(s.nodeKv('n1', 'put'), { bucket: bucket(r), key: 'alice', value: ['milk', 'eggs'], w: 3 });
  }

  say('2. the network splits: n1,n2 | n3');
  await faults({ partition: [['n1', 'n2'], ['n3']] });
  await until(
    'both sides to see the split',
    async () => (await sees('n1', 'n3', 'down')) && (await sees('n3', 'n1', 'down')) && (await sees('n3', 'n2', 'down')),
  );

  say('3. on n1,n2 Alice removes the milk and adds jam; then on n3 she adds bread');
  const sides: Record<string, { majority: unknown; minority: unknown }> = {};
  for (const r of RESOLVERS) {
    const b = bucket(r);
    if (r === 'orset') {
      await must(s.nodeKv('n1', 'put'), { bucket: b, key: 'alice', op: { remove: ['milk'], add: ['jam'] }, w: 2 });
    } else {
      const seen = await must(s.nodeKv('n1', 'get'), { bucket: b, key: 'alice', r: 2 });
      await must(s.nodeKv('n1', 'put'), {
        bucket: b,
        key: 'alice',
        value: [...(seen.values![0] as string[]).filter((x) => x !== 'milk'), 'jam'],
        context: seen.context,
        w: 2,
      });
    }
  }
  for (const r of RESOLVERS) {
    const b = bucket(r);
    if (r === 'orset') {
      await must(s.nodeKv('n3', 'put'), { bucket: b, key: 'alice', op: { add: ['bread'] }, w: 1 });
    } else {
      const seen = await must(s.nodeKv('n3', 'get'), { bucket: b, key: 'alice', r: 1 });
      await must(s.nodeKv('n3', 'put'), { bucket: b, key: 'alice', value: [...(seen.values![0] as string[]), 'bread'], context: seen.context, w: 1 });
    }
    sides[r] = {
      majority: (await must(s.nodeKv('n1', 'get'), { bucket: b, key: 'alice', r: 2 })).values![0],
      minority: (await must(s.nodeKv('n3', 'get'), { bucket: b, key: 'alice', r: 1 })).values![0],
    };
  }

  say('4. the network heals; the carts are read with R=3');
  await faults({ heal: true });
  await until('every node to see every other', async () => {
    for (const a of ['n1', 'n2', 'n3']) for (const b of ['n1', 'n2', 'n3']) if (a !== b && !(await sees(a, b, 'up'))) return false;
    return true;
  });
  const out: CartOutcome[] = [];
  for (const r of RESOLVERS) {
    const healed = await must(s.kv('get'), { bucket: bucket(r), key: 'alice', r: 3 });
    out.push({ resolver: r, majoritySide: sides[r]!.majority, minoritySide: sides[r]!.minority, afterHeal: healed.values![0] });
  }
  return out;
}

const NOTES: Record<CartOutcome['resolver'], string> = {
  lww: 'the later write wins whole: the jam and the removal of the milk are lost',
  union: "both additions kept, and the milk removed on n1,n2 is back (Dynamo's flaw)",
  orset: 'both sides kept: the milk stays removed, the jam and the bread are added',
};

export function outcomeTable(rows: readonly CartOutcome[]): string {
  const show = (x: unknown) => JSON.stringify(x);
  const lines = [
    ['RESOLVER', 'N1,N2 SIDE', 'N3 SIDE', 'AFTER HEAL', ''],
    ...rows.map((r) => [r.resolver, show(r.majoritySide), show(r.minoritySide), show(r.afterHeal), NOTES[r.resolver]]),
  ];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
