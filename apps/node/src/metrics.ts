import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { Store } from '@replica/storage';
import type { PeerStatus, ReplicationTransport } from '@replica/transport-api';
import { FlowState, type FlowObserver, type FlowReport } from './flow-control.js';
import type { ReplicationLagError } from './errors.js';
import { StorageMetrics } from './storage-metrics.js';

/** Upper bounds (s) of the HTTP latency histogram's buckets. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Tables that get their own `table` label value: the first ones by name. The rest are
 * summed under `table="_other"` (no table name starts with `_`), so a client that
 * invents table names cannot grow the number of series without bound.
 */
export const MAX_TABLE_SERIES = 64;
export const OTHER_TABLES = '_other';

/** Upper bounds (s) of the buckets of the time writes waited for flow control. */
const FLOW_WAIT_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** camelCase → snake_case, for metric names. */
const snake = (s: string) => s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

/**
 * A histogram kept elsewhere (the store's replication-lag histogram) exposed as it is at
 * each scrape: prom-client's own histograms only count what they observe themselves.
 */
class ExternalHistogram extends Gauge {
  constructor(
    name: string,
    help: string,
    registry: Registry,
    private readonly read: () => { readonly bounds: readonly number[]; readonly counts: readonly number[]; readonly count: number; readonly sum: number },
  ) {
    super({ name, help, registers: [registry] });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const h = this.read();
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    for (const [i, le] of h.bounds.entries()) {
      cumulative += h.counts[i] ?? 0;
      values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: cumulative });
    }
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: h.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: h.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: h.count });
    return { name: this.name, help: this.help, type: 'histogram' as never, aggregator: 'sum', collect: () => {}, values };
  }

  declare readonly name: string;
  declare readonly help: string;
}

/**
 * The node's Prometheus metrics, in one prom-client registry per node: the default
 * Node.js and process metrics (`process_*`, `nodejs_*`), request and write counters kept
 * as they happen, and the store's and the transport's figures read once per scrape.
 * Every series is listed in docs/configuration.md.
 */
export class Metrics implements FlowObserver {
  readonly registry = new Registry();
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route'>;
  readonly #writes: Counter<'op'>;
  readonly #tableRecords: Gauge<'table'>;
  readonly #lastSeq: Gauge;
  readonly #cursor: Gauge<'origin'>;
  readonly #peerConnected: Gauge<'peer'>;
  readonly #peerLagEntries: Gauge<'peer'>;
  readonly #peerLagSeconds: Gauge<'peer'>;
  readonly #peerApplied: Gauge<'peer' | 'origin'>;
  readonly #refused: Counter<'reason'>;
  readonly #storage: StorageMetrics;
  readonly #flowState: Gauge<'state'>;
  readonly #flowLag: Gauge;
  readonly #flowTarget: Gauge;
  readonly #flowHard: Gauge;
  readonly #flowWaiting: Gauge;
  readonly #flowWait: Histogram;
  readonly #flowRefused: Counter<'reason'>;
  /** The transport's own figures, created as the transport first reports them. */
  readonly #figures = new Map<string, Counter<string> | Gauge<string>>();

  constructor(
    private readonly store: Store,
    private readonly transport: ReplicationTransport | undefined,
    version: string,
    /** Flow control's state, read at each scrape. */
    private readonly flow: () => FlowReport,
  ) {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'replica_build_info', help: 'Always 1; the labels name the build and its setting.', labelNames: ['version', 'node_version', 'transport'], registers: r }).set(
      { version, node_version: process.version, transport: transport?.kind ?? 'none' },
      1,
    );
    this.#requests = new Counter({ name: 'replica_http_requests_total', help: 'HTTP requests by method, route pattern and status.', labelNames: ['method', 'route', 'status'], registers: r });
    this.#latency = new Histogram({ name: 'replica_http_request_duration_seconds', help: 'HTTP request latency by method and route pattern.', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS_S, registers: r });
    this.#writes = new Counter({ name: 'replica_writes_total', help: 'Local writes committed, by operation.', labelNames: ['op'], registers: r });
    this.#tableRecords = new Gauge({ name: 'replica_table_records', help: `Live records per table (the first ${MAX_TABLE_SERIES} tables by name; the rest summed as table="${OTHER_TABLES}").`, labelNames: ['table'], registers: r });
    this.#lastSeq = new Gauge({ name: 'replica_log_last_seq', help: 'Newest sequence in the replication log.', registers: r });
    this.#cursor = new Gauge({ name: 'replica_origin_cursor', help: 'Highest origin sequence applied here, per origin node.', labelNames: ['origin'], registers: r });
    this.#peerConnected = new Gauge({ name: 'replica_peer_connected', help: '1 when this node exchanges entries with the peer now.', labelNames: ['peer'], registers: r });
    this.#peerLagEntries = new Gauge({ name: 'replica_peer_lag_entries', help: "Entries of this node's log the peer has not confirmed applying.", labelNames: ['peer'], registers: r });
    this.#peerLagSeconds = new Gauge({
      name: 'replica_peer_lag_seconds',
      help: "Age of the oldest entry of this node's log the peer has not confirmed applying (0 when caught up); the same on every transport.",
      labelNames: ['peer'],
      registers: r,
    });
    this.#peerApplied = new Gauge({ name: 'replica_peer_applied_through', help: 'Highest origin sequence the peer confirmed applying, per origin.', labelNames: ['peer', 'origin'], registers: r });
    this.#refused = new Counter({ name: 'replica_peer_connections_refused_total', help: 'Peer connections refused (incoming turned away, or dialled and refused), by reason.', labelNames: ['reason'], registers: r });
    this.#storage = new StorageMetrics(this.registry);
    this.#flowState = new Gauge({
      name: 'replica_flow_control_state',
      help: 'Flow control (MAX_REPLICATION_LAG_MS): 1 for the current state (off; open; waiting: new writes wait for a peer to catch up; refusing: new writes refused).',
      labelNames: ['state'],
      registers: r,
    });
    this.#flowLag = new Gauge({ name: 'replica_flow_control_lag_seconds', help: "Age of this node's oldest own write that a peer flow control counts has not confirmed (0 when off or caught up).", registers: r });
    this.#flowTarget = new Gauge({ name: 'replica_flow_control_target_seconds', help: 'MAX_REPLICATION_LAG_MS in seconds (0: flow control off).', registers: r });
    this.#flowHard = new Gauge({ name: 'replica_flow_control_hard_limit_seconds', help: 'The lag past which flow control refuses writes, in seconds (0: off).', registers: r });
    this.#flowWaiting = new Gauge({ name: 'replica_flow_control_waiting_writes', help: 'Local writes waiting for flow control now.', registers: r });
    this.#flowWait = new Histogram({ name: 'replica_flow_control_wait_seconds', help: 'Time each local write that had to wait spent waiting for flow control (let through or refused after).', buckets: FLOW_WAIT_BUCKETS_S, registers: r });
    this.#flowRefused = new Counter({ name: 'replica_flow_control_refused_total', help: 'Local writes refused by flow control (503), by reason: hardLimit, waitedTooLong.', labelNames: ['reason'], registers: r });
    for (const reason of ['hardLimit', 'waitedTooLong'] as const) this.#flowRefused.inc({ reason }, 0);
    new ExternalHistogram('replica_replication_lag_seconds', 'From the origin writing an entry to its commit here (includes clock offset between hosts).', this.registry, () => this.#lag());
  }

  #lag() {
    const lag = this.store.lagHistogram();
    return { bounds: lag.bucketsMs.map((b) => b / 1000), counts: lag.counts, count: lag.count, sum: lag.sumMs / 1000 };
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.#requests.inc({ method, route, status: String(status) });
    this.#latency.observe({ method, route }, seconds);
  }

  write(op: 'insert' | 'upsert' | 'delete'): void {
    this.#writes.inc({ op });
  }

  flowWaited(seconds: number): void {
    this.#flowWait.observe(seconds);
  }

  flowRefused(reason: ReplicationLagError['reason']): void {
    this.#flowRefused.inc({ reason });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Reads the store's and the transport's figures, then renders every metric. */
  async render(): Promise<string> {
    const { store, transport } = this;
    this.#tableRecords.reset();
    const tables = Object.entries(store.tables()).sort(([a], [b]) => (a < b ? -1 : 1));
    for (const [table, s] of tables.slice(0, MAX_TABLE_SERIES)) this.#tableRecords.set({ table }, s.count);
    if (tables.length > MAX_TABLE_SERIES) this.#tableRecords.set({ table: OTHER_TABLES }, tables.slice(MAX_TABLE_SERIES).reduce((n, [, s]) => n + s.count, 0));
    this.#lastSeq.set(store.lastSeq());
    this.#storage.update(store);
    const flow = this.flow();
    for (const state of Object.values(FlowState)) this.#flowState.set({ state }, flow.state === state ? 1 : 0);
    this.#flowLag.set(flow.lagMs / 1000);
    this.#flowTarget.set(flow.targetMs / 1000);
    this.#flowHard.set(flow.hardMs / 1000);
    this.#flowWaiting.set(flow.waiting);
    this.#cursor.reset();
    for (const [origin, seq] of Object.entries(store.cursors())) this.#cursor.set({ origin }, seq);

    for (const g of [this.#peerConnected, this.#peerLagEntries, this.#peerLagSeconds, this.#peerApplied]) g.reset();
    this.#refused.reset();
    for (const f of this.#figures.values()) f.reset();
    if (transport) {
      const status = transport.status();
      for (const p of status.peers) {
        const peer = p.name;
        this.#peerConnected.set({ peer }, p.connected ? 1 : 0);
        this.#peerLagEntries.set({ peer }, p.lagEntries);
        this.#peerLagSeconds.set({ peer }, p.lagMs / 1000);
        for (const [origin, seq] of Object.entries(p.appliedThrough)) this.#peerApplied.set({ peer, origin }, seq);
      }
      for (const [reason, n] of Object.entries(status.refused)) this.#refused.inc({ reason }, n);
      const perPeer = (pick: (p: PeerStatus) => Readonly<Record<string, number>>) => status.peers.map((p) => ({ labels: { peer: p.name }, values: pick(p) }));
      this.#report('counter', 'replica_peer', perPeer((p) => p.counters));
      this.#report('gauge', 'replica_peer', perPeer((p) => p.gauges));
      this.#report('counter', 'replica_transport', [{ labels: {}, values: status.counters }]);
      this.#report('gauge', 'replica_transport', [{ labels: {}, values: status.gauges }]);
    }
    return this.registry.metrics();
  }

  /** Every figure a transport reports, as the kind it declares: counters as `_total`. */
  #report(kind: 'counter' | 'gauge', prefix: string, rows: readonly { labels: Record<string, string>; values: Readonly<Record<string, number>> }[]): void {
    for (const row of rows) {
      for (const [key, value] of Object.entries(row.values)) {
        const name = `${prefix}_${snake(key)}${kind === 'counter' ? '_total' : ''}`;
        let m = this.#figures.get(name);
        if (!m) {
          const o = { name, help: `The transport's ${kind} ${key}${prefix === 'replica_peer' ? ', per peer' : ''}.`, labelNames: Object.keys(row.labels), registers: [this.registry] };
          m = kind === 'counter' ? new Counter(o) : new Gauge(o);
          this.#figures.set(name, m);
        }
        if (m instanceof Counter) m.inc(row.labels, value);
        else m.set(row.labels, value);
      }
    }
  }
}
