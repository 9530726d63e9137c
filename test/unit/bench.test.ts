import { expect } from 'chai';
import { benchTable, medianRow, type BenchRow } from '../../bench/compare.js';

const row = (system: BenchRow['system'], op: BenchRow['op'], opsPerSec: number, p999: number, errors = 0): BenchRow => ({ system, op, concurrency: 64, opsPerSec, p50: 1, p99: 2, p999, errors });

describe('benchmark table (npm run bench)', () => {
  it("keeps the round of median throughput, with that round's own latencies, and counts every round's errors", () => {
    const m = medianRow([row('dynamo', 'put', 900, 30, 1), row('dynamo', 'put', 2000, 10), row('dynamo', 'put', 1500, 20, 2)]);
    expect(m).to.include({ opsPerSec: 1500, p999: 20, errors: 3 });
    // An even number of rounds keeps the lower middle one: the table never flatters.
    expect(medianRow([row('floor', 'get', 10, 1), row('floor', 'get', 30, 1), row('floor', 'get', 20, 1), row('floor', 'get', 40, 1)]).opsPerSec).to.equal(20);
  });

  it('gives each row its ratios to JetStream KV and to the floor for the same op and concurrency', () => {
    const table = benchTable([row('dynamo', 'put', 500, 40), row('floor', 'put', 1000, 20), row('jetstream', 'put', 2000, 10)]);
    const cells = table.split('\n')[1]!.split(/\s{2,}/);
    expect(cells.slice(-3)).to.deep.equal(['0.25', '0.50', '4.00']);
  });
});
