import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Op } from '../protocol/requests.js';
import { OUTCOMES, type Outcome } from '../inspect/trace.js';
import { LATENCY_BOUNDS_MS, type LatencyHistogram } from './quantile.js';

const OPS: readonly Op[] = ['get', 'put', 'delete'];

/** Counters a node already keeps, read only when metrics are scraped (nothing extra on the request path). */
export interface MetricSources {
  hintsPending(): Promise<number>;
  hints(): { stored: number; refused: number; delivered: number };
  antiEntropy(): { exchanges: number; failures: number; keysRepaired: number; bytesSent: number };
  gossip(): { rounds: number; exchanges: number; failedExchanges: number };
  /** members by state as this node sees them: up, joining, leaving, left, suspect, down, ... */
  memberStates(): Record<string, number>;
  inFlight(): number;
}

/** Every metric a node exports, by name (docs/operations.md lists them; a test holds the two together). */
export const METRIC_NAMES = [
  'dynamo_client_requests_total',
  'dynamo_client_request_duration_seconds',
  'dynamo_quorum_failures_total',
  'dynamo_requests_in_flight',
  'dynamo_hints_pending',
  'dynamo_hints_stored_total',
  'dynamo_hints_refused_total',
  'dynamo_hints_delivered_total',
  'dynamo_anti_entropy_exchanges_total',
  'dynamo_anti_entropy_failures_total',
  'dynamo_anti_entropy_keys_repaired_total',
  'dynamo_anti_entropy_bytes_sent_total',
  'dynamo_gossip_rounds_total',
  'dynamo_gossip_exchanges_total',
  'dynamo_gossip_failed_exchanges_total',
  'dynamo_members',
] as const;

/** A counter whose value is read from `read` at scrape time. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/**
 * One node's Prometheus metrics, in a registry of its own (several nodes may share a
 * process). Client requests are counted and timed as they are answered; everything
 * else is read from the counters the actors keep, when scraped.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'op' | 'outcome'>;
  private readonly duration: Histogram<'op' | 'outcome'>;
  private readonly quorumFailures: Counter<'op'>;
  /** label children by op then outcome, looked up once: prom-client hashes the label object on every plain call */
  private readonly children: Record<string, Record<string, { count: Counter; time: Histogram }>> = {};
  /**
   * @param sources what the scrape-time gauges read (the node's NodeStatus), looked up
   * at each scrape: the container builds this before the node's other parts exist.
   */
  constructor(
    nodeId: string,
    private readonly sources: () => MetricSources | null = () => null,
  ) {
    this.registry.setDefaultLabels({ node: nodeId });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'dynamo_client_requests_total',
      help: 'client requests answered, by op and outcome (ok or the error code)',
      labelNames: ['op', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'dynamo_client_request_duration_seconds',
      help: 'time from a client request reaching this node to its reply, by op and outcome',
      labelNames: ['op', 'outcome'],
      buckets: LATENCY_BOUNDS_MS.map((ms) => ms / 1000),
      registers,
    });
    this.quorumFailures = new Counter({
      name: 'dynamo_quorum_failures_total',
      help: 'client requests answered QUORUM_NOT_MET or TIMEOUT, by op',
      labelNames: ['op'],
      registers,
    });
    for (const op of OPS) {
      this.children[op] = {};
      for (const outcome of OUTCOMES)
        this.children[op][outcome] = {
          count: this.requests.labels(op, outcome) as unknown as Counter,
          time: this.duration.labels(op, outcome) as unknown as Histogram,
        };
    }
    const src = this.sources;
    const gauge = (name: string, help: string, read: (s: MetricSources) => number | Promise<number>) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const s = src();
          if (s) this.set(await read(s));
        },
      });
    gauge('dynamo_requests_in_flight', 'client requests this node is coordinating now', (s) => s.inFlight());
    gauge('dynamo_hints_pending', 'hints this node holds for members that were down', (s) => s.hintsPending());
    const mirrored: [string, string, (s: MetricSources) => number][] = [
      ['dynamo_hints_stored_total', 'hinted writes this node stored for a down member', (s) => s.hints().stored],
      ['dynamo_hints_refused_total', 'hinted writes refused because the hint store was full', (s) => s.hints().refused],
      ['dynamo_hints_delivered_total', 'hints delivered to their owner once it was back', (s) => s.hints().delivered],
      ['dynamo_anti_entropy_exchanges_total', 'Merkle-tree exchanges this node ran with a peer', (s) => s.antiEntropy().exchanges],
      ['dynamo_anti_entropy_failures_total', 'anti-entropy exchanges that failed or timed out', (s) => s.antiEntropy().failures],
      ['dynamo_anti_entropy_keys_repaired_total', 'keys anti-entropy repaired, in either direction', (s) => s.antiEntropy().keysRepaired],
      ['dynamo_anti_entropy_bytes_sent_total', 'bytes anti-entropy sent to peers', (s) => s.antiEntropy().bytesSent],
      ['dynamo_gossip_rounds_total', 'gossip rounds run', (s) => s.gossip().rounds],
      ['dynamo_gossip_exchanges_total', 'gossip exchanges with a peer that answered', (s) => s.gossip().exchanges],
      ['dynamo_gossip_failed_exchanges_total', 'gossip exchanges that got no answer', (s) => s.gossip().failedExchanges],
    ];
    for (const [name, help, read] of mirrored)
      mirroredCounter(this.registry, name, help, () => {
        const s = src();
        return s ? read(s) : 0;
      });
    new Gauge({
      name: 'dynamo_members',
      help: 'members by state, as this node sees them',
      labelNames: ['state'],
      registers,
      collect() {
        const s = src();
        if (!s) return;
        this.reset();
        for (const [state, n] of Object.entries(s.memberStates())) this.labels(state).set(n);
      },
    });
  }

  /** A client request answered: the only metric work on the request path. */
  request(op: Op, outcome: Outcome, ms: number): void {
    const c = this.children[op][outcome];
    c.count.inc();
    c.time.observe(ms / 1000);
    if (outcome === 'QUORUM_NOT_MET' || outcome === 'TIMEOUT') this.quorumFailures.labels(op).inc();
  }

  /** Each op's latency histogram over every outcome since start (for the console). */
  async latency(): Promise<Record<string, LatencyHistogram>> {
    const out: Record<string, { counts: number[]; total: number }> = {};
    for (const op of OPS) out[op] = { counts: LATENCY_BOUNDS_MS.map(() => 0), total: 0 };
    const bound = new Map(LATENCY_BOUNDS_MS.map((ms, i) => [ms / 1000, i]));
    for (const v of (await this.duration.get()).values) {
      const h = out[v.labels['op'] as string];
      if (h === undefined) continue;
      if (v.metricName === 'dynamo_client_request_duration_seconds_count') h.total += v.value;
      else if (v.metricName === 'dynamo_client_request_duration_seconds_bucket') {
        const i = bound.get(Number((v.labels as Record<string, unknown>)['le']));
        if (i !== undefined) h.counts[i] += v.value;
      }
    }
    return out;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
