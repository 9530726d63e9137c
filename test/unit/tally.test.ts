import { expect } from 'chai';
import { addAck, addFailure, allAnswered, createTally, status, type Tally } from '../../src/quorum/tally.js';

type Step = ['ack' | 'fail', string];

function run(needed: number, total: number, steps: Step[]): Tally {
  return steps.reduce((t, [kind, node]) => (kind === 'ack' ? addAck(t, node) : addFailure(t, node)), createTally(needed, total));
}

describe('quorum tally', () => {
  const table: { name: string; needed: number; total: number; steps: Step[]; want: string }[] = [
    { name: 'nothing yet', needed: 2, total: 3, steps: [], want: 'pending' },
    { name: 'one of two', needed: 2, total: 3, steps: [['ack', 'a']], want: 'pending' },
    {
      name: 'two of two',
      needed: 2,
      total: 3,
      steps: [
        ['ack', 'a'],
        ['ack', 'b'],
      ],
      want: 'met',
    },
    {
      name: 'fails fast once impossible',
      needed: 2,
      total: 3,
      steps: [
        ['fail', 'a'],
        ['fail', 'b'],
      ],
      want: 'failed',
    },
    {
      name: 'one failure still possible',
      needed: 2,
      total: 3,
      steps: [
        ['fail', 'a'],
        ['ack', 'b'],
      ],
      want: 'pending',
    },
    {
      name: 'duplicate acks count once',
      needed: 2,
      total: 3,
      steps: [
        ['ack', 'a'],
        ['ack', 'a'],
      ],
      want: 'pending',
    },
    {
      name: 'an ack after a failure from the same replica is ignored',
      needed: 1,
      total: 1,
      steps: [
        ['fail', 'a'],
        ['ack', 'a'],
      ],
      want: 'failed',
    },
    {
      name: 'N=W=3 needs all',
      needed: 3,
      total: 3,
      steps: [
        ['ack', 'a'],
        ['ack', 'b'],
        ['fail', 'c'],
      ],
      want: 'failed',
    },
    {
      name: 'R=1 met by the first answer',
      needed: 1,
      total: 3,
      steps: [
        ['fail', 'a'],
        ['ack', 'b'],
      ],
      want: 'met',
    },
  ];
  for (const row of table) {
    it(row.name, () => expect(status(run(row.needed, row.total, row.steps))).to.equal(row.want));
  }

  it('knows when every replica has answered', () => {
    expect(
      allAnswered(
        run(2, 3, [
          ['ack', 'a'],
          ['fail', 'b'],
        ]),
      ),
    ).to.equal(false);
    expect(
      allAnswered(
        run(2, 3, [
          ['ack', 'a'],
          ['fail', 'b'],
          ['ack', 'c'],
        ]),
      ),
    ).to.equal(true);
  });

  it('reports acks and needed for the error reply', () => {
    const t = run(2, 3, [
      ['ack', 'a'],
      ['fail', 'b'],
      ['fail', 'c'],
    ]);
    expect([t.acks, t.needed, t.ackedBy, t.failedBy]).to.deep.equal([1, 2, ['a'], ['b', 'c']]);
  });

  it('refuses impossible quorums', () => {
    expect(() => createTally(4, 3)).to.throw(/impossible/);
    expect(() => createTally(0, 3)).to.throw(/impossible/);
  });
});
