import { expect } from 'chai';
import { failures, figures, missing, type Op, quantile, timeline } from '../helpers/history.js';

/** The partition suite's checkers (test/fault/partition.test.ts), each shown failing on a history that breaks its property. */
describe('fault-suite history checkers', () => {
  /** Writes every 10 ms from 0 to 10 s, each taking 5 ms and acknowledged, unless `change` says otherwise. */
  function history(change: (op: Op, i: number) => Op = (o) => o): Op[] {
    return Array.from({ length: 1000 }, (_, i) => change({ key: `k${i}`, start: i * 10, end: i * 10 + 5, ok: true }, i));
  }
  const fault = { from: 2000, to: 8000 };

  it('a healthy history meets every target', () => {
    const f = figures(history(), fault);
    expect(f.attempted).to.equal(600);
    expect(f.availability).to.equal(1);
    expect(f.p999Ms).to.equal(5);
    expect(f.longestStretchMs).to.be.at.most(10);
    expect(f.ackRate).to.equal(100);
  });

  it('availability counts only the writes sent inside the fault window, and falls when they fail', () => {
    // 1% of the writes inside the window fail; the ones before and after do not count.
    const h = history((o, i) => (i >= 200 && i < 800 && i % 100 === 0 ? { ...o, ok: false, error: 'TIMEOUT: x' } : o));
    const f = figures(h, fault);
    expect(f.acknowledged).to.equal(594);
    expect(f.availability).to.be.below(0.995);
    expect(failures(h, fault)).to.equal('6× TIMEOUT: x');
    // Failures outside the window leave it whole.
    expect(
      figures(
        history((o, i) => (i < 200 ? { ...o, ok: false } : o)),
        fault,
      ).availability,
    ).to.equal(1);
  });

  it('p99.9 catches a single slow acknowledgement among hundreds', () => {
    const f = figures(
      history((o, i) => (i === 500 ? { ...o, end: o.start + 2500 } : o)),
      fault,
    );
    expect(f.p999Ms).to.equal(2500);
    expect(quantile([], 0.999)).to.equal(Number.POSITIVE_INFINITY);
    expect(quantile([1, 2, 3, 4], 0.5)).to.equal(2);
  });

  it('the longest stretch finds a freeze inside the window, and one at its edges', () => {
    // Nothing acknowledged from 3 s to 7 s: a 4 s freeze.
    const frozen = history((o) => (o.start >= 3000 && o.start < 7000 ? { ...o, ok: false } : o));
    expect(figures(frozen, fault).longestStretchMs).to.be.within(4000, 4010);
    // A freeze that begins with the cut and lasts to the heal: the whole window.
    const dead = history((o) => (o.start >= 1900 ? { ...o, ok: false } : o));
    expect(figures(dead, fault).longestStretchMs).to.equal(6000);
    expect(figures(dead, fault).ackRate).to.equal(0);
    // Slow answers, arriving late, still count when they arrive.
    const late = history((o) => (o.start >= 3000 && o.start < 7000 ? { ...o, end: 7000 } : o));
    expect(figures(late, fault).longestStretchMs).to.be.within(4000, 4010);
    expect(timeline(late, 2000, 8000)).to.deep.equal([100, 0, 0, 0, 0, 500]);
  });

  it('missing lists an acknowledged write no replica holds, and never an unacknowledged one', () => {
    const h = history((o, i) => (i === 7 ? { ...o, ok: false } : o));
    const held = new Set(h.map((o) => o.key).filter((k) => k !== 'k3' && k !== 'k7'));
    expect(missing(h, held)).to.deep.equal(['k3']);
  });
});
