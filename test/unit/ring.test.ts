import { expect } from 'chai';
import { keyPosition, Ring, RING_SIZE, TOKENS_PER_WEIGHT } from '../../src/ring/index.js';

describe('ring', () => {
  const ring = new Ring([
    { id: 'n1', weight: 1 },
    { id: 'n2', weight: 1 },
    { id: 'n3', weight: 2 },
  ]);

  it('places tokens in proportion to weight and not in sequence', () => {
    const byNode = (id: string) => ring.tokens.filter((t) => t.node === id).length;
    expect(byNode('n1')).to.equal(TOKENS_PER_WEIGHT);
    expect(byNode('n3')).to.equal(2 * TOKENS_PER_WEIGHT);
    // Tokens of different nodes interleave around the ring.
    let changes = 0;
    for (let i = 1; i < ring.tokens.length; i++) if (ring.tokens[i]!.node !== ring.tokens[i - 1]!.node) changes++;
    expect(changes).to.be.greaterThan(ring.tokens.length / 3);
  });

  it('lists every node once, primary first, fallbacks after', () => {
    const list = ring.walk(keyPosition('default', 'cart:alice'));
    expect([...list].sort()).to.deep.equal(['n1', 'n2', 'n3']);
    expect(ring.walk(keyPosition('default', 'cart:alice'), 2)).to.deep.equal(list.slice(0, 2));
  });

  it('wraps around the top of the ring', () => {
    const last = ring.tokens[ring.tokens.length - 1]!;
    expect(ring.primary(last.position + 1)).to.equal(ring.tokens[0]!.node);
    expect(ring.primary(RING_SIZE - 1)).to.equal(ring.tokens[0]!.node);
  });

  it('reports ownership shares that sum to 1', () => {
    const total = [...ring.ownership().values()].reduce((a, b) => a + b, 0);
    expect(total).to.be.closeTo(1, 1e-9);
    expect(ring.ownership().get('n3')!).to.be.greaterThan(ring.ownership().get('n1')!);
  });

  it('rejects duplicate members and bad weights', () => {
    expect(
      () =>
        new Ring([
          { id: 'a', weight: 1 },
          { id: 'a', weight: 1 },
        ]),
    ).to.throw(/duplicate/);
    expect(() => new Ring([{ id: 'a', weight: 0 }])).to.throw(/weight/);
    expect(() => new Ring([{ id: 'a', weight: 1e9 }])).to.throw(/weight/);
  });

  it('an empty ring has no owners', () => {
    expect(new Ring([]).walk(5)).to.deep.equal([]);
    expect(new Ring([]).primary(5)).to.equal(undefined);
  });
});
