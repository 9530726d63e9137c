import { expect } from 'chai';
import { benchHeading, benchTable, breakdownTable, medianRow, scalingReference, targetChecks, warmUp, type BenchRow } from '../../bench/compare.js';
import { parseStatCpuMicros } from '../../bench/cpu.js';

const row = (system: BenchRow['system'], op: BenchRow['op'], opsPerSec: number, p999: number, errors = 0, cpuPerOp = 100, concurrency = 64): BenchRow => ({
  system,
  op,
  concurrency,
  opsPerSec,
  p50: 1,
  p99: 2,
  p999,
  errors,
  cpuPerOp,
  loaderCpuPerOp: 10,
  breakdown: { nats: cpuPerOp / 4, node: (cpuPerOp * 3) / 4 },
});

describe('benchmark table (npm run bench)', () => {
  it("keeps the round of median throughput, with that round's own latencies, and counts every round's errors", () => {
    const m = medianRow([row('dynamo', 'put', 900, 30, 1), row('dynamo', 'put', 2000, 10), row('dynamo', 'put', 1500, 20, 2)]);
    expect(m).to.include({ opsPerSec: 1500, p999: 20, errors: 3 });
    // An even number of rounds keeps the lower middle one: the table never flatters.
    expect(medianRow([row('floor', 'get', 10, 1), row('floor', 'get', 30, 1), row('floor', 'get', 20, 1), row('floor', 'get', 40, 1)]).opsPerSec).to.equal(20);
  });

  it('gives each row its CPU ratio to the floor, and its ratios to JetStream KV and to the floor for the same op and concurrency', () => {
    const table = benchTable([row('dynamo', 'put', 500, 40, 0, 300), row('floor', 'put', 1000, 20, 0, 50), row('jetstream', 'put', 2000, 10)]);
    const cells = table.split('\n')[1]!.split(/\s{2,}/);
    expect(cells.slice(-6)).to.deep.equal(['300', '10', '6.00', '0.25', '0.50', '4.00']);
  });

  it('compares the 6-node rows with the floor of 6 processes, and says what the floors do from 3 to 6 beside the store', () => {
    const rows = [
      row('dynamo', 'put', 500, 40, 0, 300),
      row('floor', 'put', 1000, 20, 0, 100),
      row('dynamo6', 'put', 250, 40, 0, 900),
      row('floor6', 'put', 400, 20, 0, 200),
    ];
    const lines = benchTable(rows).split('\n');
    const cpuVsFloor = (system: string) => lines.find((l) => l.startsWith(`${system} `))!.split(/\s{2,}/)[10];
    expect(cpuVsFloor('dynamo')).to.equal('3.00');
    expect(cpuVsFloor('dynamo6')).to.equal('4.50');
    expect(cpuVsFloor('floor6')).to.equal('1.00');
    expect(scalingReference(rows, 64)).to.deep.equal(["put: the floor's own CPU/op on 6 processes vs 3, c=64: 2.00, this store's 3.00"]);
    // Without a floor6 row there is nothing to say.
    expect(scalingReference(rows.slice(0, 3), 64)).to.deep.equal([]);
  });

  it('breaks CPU per op down by kind of process', () => {
    const lines = breakdownTable([row('dynamo', 'get', 1, 1, 0, 200)]).split('\n');
    expect(lines[0]!.split(/\s{2,}/)).to.deep.equal(['SYSTEM', 'OP', 'CONCURRENCY', 'NATS', 'NODE']);
    expect(lines[1]!.split(/\s{2,}/)).to.deep.equal(['dynamo', 'get', '64', '50.0', '150.0']);
  });

  it('works each target out of the rows, and leaves out those the run did not measure', () => {
    const rows = [
      row('dynamo', 'put', 600, 30, 0, 150),
      row('floor', 'put', 1000, 20, 0, 100),
      row('jetstream', 'put', 1000, 20),
      row('dynamo6', 'put', 600, 30, 2, 210),
    ];
    const checks = new Map(targetChecks(rows, 64).map((c) => [c.name, c]));
    expect(checks.get("put: server CPU/op vs the batched floor's, c=64")).to.include({ value: 1.5, limit: 2, kind: 'max' });
    expect(checks.get("put: ops/s vs JetStream KV's, raw subjects, c=64")).to.include({ value: 0.6, kind: 'min' });
    expect(checks.get('put: CPU/op of 6 nodes vs 3 nodes, c=64')!.value).to.be.closeTo(1.4, 1e-9);
    expect(checks.get('errors, every row')).to.include({ value: 2 });
    expect(checks.has("get: server CPU/op vs the batched floor's, c=64")).to.equal(false);
  });

  it('reads utime and stime from a /proc stat line whose command name holds spaces and parentheses', () => {
    const stat = '4242 (node (a b)) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 11 0 999 1000 100';
    expect(parseStatCpuMicros(stat)).to.equal((123 + 45) * 10_000);
  });

  it('warms a system up with puts and then gets, every caller busy, and names the warm-up in the heading', async () => {
    const calls: string[] = [];
    let busy = 0;
    let most = 0;
    const call = (op: string) => async (key: string) => {
      calls.push(`${op} ${key}`);
      most = Math.max(most, ++busy);
      await new Promise<void>((r) => setImmediate(r));
      busy--;
    };
    await warmUp({ put: call('put'), get: call('get') }, 'fake', 0.2, 8, () => {});
    const firstGet = calls.findIndex((c) => c.startsWith('get'));
    expect(firstGet).to.be.greaterThan(0);
    expect(calls.slice(0, firstGet).every((c) => c.startsWith('put'))).to.equal(true);
    expect(most).to.equal(8);
    expect(benchHeading(3, 2, 20)).to.include('after 20 s of unmeasured puts and gets on each system');
    expect(benchHeading(3, 2, 0)).to.include('no warm-up');
  });
});
