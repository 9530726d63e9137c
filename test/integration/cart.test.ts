import { expect } from 'chai';
import { cartStory, outcomeTable } from '../../examples/cart.js';
import { RealCluster } from '../helpers/real-cluster.js';

/** The partitioned cart of examples/cart.ts on real servers: what each resolver keeps. */
describe('the cart story under a partition (real servers)', function () {
  this.timeout(90_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3'], { allowFaults: true }).start();
  });
  after(() => c?.stop());

  it('lww keeps the later side only, union keeps both adds but brings the removed milk back, orset keeps both sides', async () => {
    const rows = await cartStory(c.client);
    console.log(outcomeTable(rows).replace(/^/gm, '      '));
    const by = Object.fromEntries(rows.map((r) => [r.resolver, r]));
    const sorted = (x: unknown) => [...(x as string[])].sort();
    // Each side saw its own change during the partition.
    for (const r of rows) {
      expect(sorted(r.majoritySide), `${r.resolver} on n1,n2`).to.deep.equal(['eggs', 'jam']);
      expect(sorted(r.minoritySide), `${r.resolver} on n3`).to.deep.equal(['bread', 'eggs', 'milk']);
    }
    // n3 wrote last: its whole cart wins; the jam and the removal of the milk are lost.
    expect(sorted(by['lww']!.afterHeal)).to.deep.equal(['bread', 'eggs', 'milk']);
    // The union of the two carts: both adds are kept, and the milk comes back.
    expect(sorted(by['union']!.afterHeal)).to.deep.equal(['bread', 'eggs', 'jam', 'milk']);
    // The observed-remove set: both adds are kept and the milk stays removed.
    expect(sorted(by['orset']!.afterHeal)).to.deep.equal(['bread', 'eggs', 'jam']);
  });
});
