import { expect } from 'chai';
import { planChange } from '../../src/membership/plan.js';
import { keyPosition, Ring } from '../../src/ring/index.js';

const members = (ids: string[]) => ids.map((id) => ({ id, weight: 1 }));

describe('ring change plan', () => {
  it('a join: what each node gains and loses balances, and matches where keys land', () => {
    const current = members(['a', 'b', 'c', 'd']);
    const future = members(['a', 'b', 'c', 'd', 'e']);
    const rows = planChange(current, future, 3, 10_000);
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((x, r) => x + f(r), 0);
    expect(sum((r) => r.gains)).to.be.closeTo(
      sum((r) => r.loses),
      1e-9,
    );
    const e = rows.find((r) => r.node === 'e')!;
    expect(e.loses).to.equal(0);
    // Count it directly: keys whose replica set e joins.
    const now = new Ring(current);
    const then = new Ring(future);
    let joins = 0;
    for (let i = 0; i < 20_000; i++) {
      const p = keyPosition('default', `k${i}`);
      if (then.walk(p, 3).includes('e') && !now.walk(p, 3).includes('e')) joins++;
    }
    expect(e.gains).to.be.closeTo(joins / 20_000, 0.02);
    expect(e.keysIn).to.equal(Math.round(e.gains * 10_000));
  });

  it('a removal from three nodes at N=3 moves nothing onto the others: they hold everything already', () => {
    const rows = planChange(members(['a', 'b', 'c']), members(['a', 'b']), 3, 100);
    expect(rows.map((r) => [r.node, r.gains, r.loses])).to.deep.equal([
      ['a', 0, 0],
      ['b', 0, 0],
      ['c', 0, 1],
    ]);
  });
});
