import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { METRIC_NAMES, NodeMetrics, type MetricSources } from '../../src/metrics/metrics.js';
import { histogramDelta, histogramSum, LATENCY_BOUNDS_MS, quantileMs, type LatencyHistogram } from '../../src/metrics/quantile.js';
import { RateTracker } from '../../src/console/rates.js';

const OPERATIONS = readFileSync(fileURLToPath(new URL('../../../docs/operations.md', import.meta.url)), 'utf8');

const sources: MetricSources = {
  hintsPending: async () => 7,
  hints: () => ({ stored: 3, refused: 1, delivered: 2 }),
  antiEntropy: () => ({ exchanges: 11, failures: 1, keysRepaired: 40, bytesSent: 9000 }),
  gossip: () => ({ rounds: 25, exchanges: 24, failedExchanges: 1 }),
  memberStates: () => ({ up: 2, down: 1 }),
  inFlight: () => 4,
};

/** A histogram with `n` requests at each of the given latencies (ms). */
function histogramOf(latencies: number[]): LatencyHistogram {
  const counts = LATENCY_BOUNDS_MS.map((b) => latencies.filter((l) => l <= b).length);
  return { counts, total: latencies.length };
}

describe('metrics', () => {
  it('exports exactly the documented names, each listed in docs/operations.md', async () => {
    const m = new NodeMetrics('n1', () => sources);
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    expect(names).to.deep.equal([...METRIC_NAMES].sort());
    for (const name of METRIC_NAMES) expect(OPERATIONS, `docs/operations.md lists ${name}`).to.contain(`\`${name}\``);
  });

  it('counts and times client requests by op and outcome, and quorum failures by op', async () => {
    const m = new NodeMetrics('n1', () => sources);
    m.request('put', 'ok', 1.5);
    m.request('put', 'ok', 3);
    m.request('get', 'QUORUM_NOT_MET', 20);
    m.request('get', 'TIMEOUT', 1000);
    const text = await m.text();
    expect(text).to.contain('dynamo_client_requests_total{op="put",outcome="ok",node="n1"} 2');
    expect(text).to.contain('dynamo_client_requests_total{op="get",outcome="QUORUM_NOT_MET",node="n1"} 1');
    expect(text).to.contain('dynamo_quorum_failures_total{op="get",node="n1"} 2');
    expect(text).to.contain('dynamo_client_request_duration_seconds_bucket{le="0.002",node="n1",op="put",outcome="ok"} 1');
    expect(text).to.contain('dynamo_client_request_duration_seconds_bucket{le="0.004",node="n1",op="put",outcome="ok"} 2');
    const latency = await m.latency();
    expect(latency['put']).to.deep.equal(histogramOf([1.5, 3]));
    expect(latency['get']).to.deep.equal(histogramOf([20, 1000]));
    expect(latency['delete']!.total).to.equal(0);
  });

  it("reads the actors' own counters at scrape time", async () => {
    const m = new NodeMetrics('n2', () => sources);
    const text = await m.text();
    for (const line of [
      'dynamo_hints_pending{node="n2"} 7',
      'dynamo_hints_stored_total{node="n2"} 3',
      'dynamo_hints_delivered_total{node="n2"} 2',
      'dynamo_anti_entropy_exchanges_total{node="n2"} 11',
      'dynamo_anti_entropy_keys_repaired_total{node="n2"} 40',
      'dynamo_gossip_rounds_total{node="n2"} 25',
      'dynamo_members{state="up",node="n2"} 2',
      'dynamo_members{state="down",node="n2"} 1',
      'dynamo_requests_in_flight{node="n2"} 4',
    ]) {
      expect(text).to.contain(line);
    }
  });
});

describe('latency quantiles from histograms (pure)', () => {
  it('interpolates inside the bucket the rank falls in, as histogram_quantile does', () => {
    // 1000 requests: 990 at 0.7 ms (bucket 0.5-1), 10 at 100 ms (bucket 64-128).
    const h = histogramOf([...Array(990).fill(0.7), ...Array(10).fill(100)]);
    expect(quantileMs(h, 0.5)).to.be.closeTo(0.5 + 0.5 * (500 / 990), 1e-9);
    expect(quantileMs(h, 0.999)).to.be.closeTo(64 + 64 * (9 / 10), 1e-9);
    expect(quantileMs(h, 1)).to.equal(128);
  });

  it('says null with no requests, and the last bound past it', () => {
    expect(quantileMs(histogramOf([]), 0.5)).to.equal(null);
    expect(quantileMs(histogramOf([120_000]), 0.5)).to.equal(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]);
    expect(() => quantileMs(histogramOf([1]), 0)).to.throw(/q must/);
  });

  it('subtracts readings bucket by bucket, taking a smaller total as a restart', () => {
    const a = histogramOf([1, 2]);
    const b = histogramOf([1, 2, 50, 50]);
    expect(histogramDelta(a, b)).to.deep.equal(histogramOf([50, 50]));
    expect(histogramDelta(b, a)).to.deep.equal(a);
    expect(histogramSum([a, histogramOf([50, 50])])).to.deep.equal(b);
  });

  it("turns the nodes' cumulative histograms into cluster ops/s and p99.9", () => {
    const rates = new RateTracker();
    expect(
      rates.next(
        new Map([
          ['n1', { put: histogramOf([1]) }],
          ['n2', { put: histogramOf([]) }],
        ]),
        0,
      ),
    ).to.equal(null);
    const point = rates.next(
      new Map([
        ['n1', { put: histogramOf([1, ...Array(100).fill(3)]) }],
        ['n2', { put: histogramOf(Array(100).fill(3)) }],
      ]),
      2000,
    );
    expect(point!.ops['put']!.perSecond).to.equal(100);
    expect(point!.ops['put']!.p999Ms).to.be.within(2, 4);
    expect(point!.ops['get']!.perSecond).to.equal(0);
    // A node that did not answer is skipped, then picked up from where it was.
    const gap = rates.next(
      new Map([
        ['n1', null],
        ['n2', { put: histogramOf(Array(140).fill(3)) }],
      ]),
      3000,
    );
    expect(gap!.ops['put']!.perSecond).to.equal(40);
  });
});
