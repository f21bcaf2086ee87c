import { Histogram, type HistogramSnapshot, type Store } from '@replica/storage';
import type { PeerStatus, ReplicationTransport } from '@replica/transport-api';

/** Upper bounds (s) of the HTTP latency histogram's buckets. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Appends a histogram in Prometheus' text form: cumulative `le` buckets, sum and count. */
function histogramLines(out: string[], name: string, labels: string, h: HistogramSnapshot): void {
  const sep = labels === '' ? '' : ',';
  let cum = 0;
  for (const [i, b] of h.bounds.entries()) {
    cum += h.counts[i] as number;
    out.push(`${name}_bucket{${labels}${sep}le="${b}"} ${cum}`);
  }
  out.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${h.count}`);
  const plain = labels === '' ? '' : `{${labels}}`;
  out.push(`${name}_sum${plain} ${h.sum}`);
  out.push(`${name}_count${plain} ${h.count}`);
}

/** camelCase → snake_case, for metric names. */
const snake = (s: string) => s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The node's Prometheus metrics: kept as plain counters, rendered on scrape. */
export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #writes = new Map<string, number>();

  request(method: string, route: string, status: number, seconds: number): void {
    const key = `${method}\u0000${route}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const lk = `${method}\u0000${route}`;
    let h = this.#latency.get(lk);
    if (!h) this.#latency.set(lk, (h = new Histogram(LATENCY_BUCKETS_S)));
    h.observe(seconds);
  }

  write(op: 'insert' | 'upsert' | 'delete'): void {
    this.#writes.set(op, (this.#writes.get(op) ?? 0) + 1);
  }

  render(store: Store, transport: ReplicationTransport | undefined): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family('replica_http_requests_total', 'counter', 'HTTP requests by method, route and status.');
    for (const [key, n] of this.#requests) {
      const [method, route, status] = key.split('\u0000') as [string, string, string];
      out.push(`replica_http_requests_total{method="${method}",route="${esc(route)}",status="${status}"} ${n}`);
    }
    family('replica_http_request_duration_seconds', 'histogram', 'HTTP request latency by method and route.');
    for (const [key, h] of this.#latency) {
      const [method, route] = key.split('\u0000') as [string, string];
      histogramLines(out, 'replica_http_request_duration_seconds', `method="${method}",route="${esc(route)}"`, h.snapshot());
    }
    family('replica_writes_total', 'counter', 'Local writes committed, by operation.');
    for (const [op, n] of this.#writes) out.push(`replica_writes_total{op="${op}"} ${n}`);

    family('replica_table_records', 'gauge', 'Live records per table.');
    for (const [table, s] of Object.entries(store.tables())) out.push(`replica_table_records{table="${table}"} ${s.count}`);
    family('replica_log_last_seq', 'gauge', 'Newest sequence in the replication log.');
    out.push(`replica_log_last_seq ${store.lastSeq()}`);
    family('replica_origin_cursor', 'gauge', 'Highest origin sequence applied here, per origin node.');
    for (const [origin, seq] of Object.entries(store.cursors())) out.push(`replica_origin_cursor{origin="${esc(origin)}"} ${seq}`);

    const lag = store.lagHistogram();
    family('replica_replication_lag_seconds', 'histogram', 'From the origin writing an entry to its commit here (includes clock offset between hosts).');
    histogramLines(out, 'replica_replication_lag_seconds', '', { bounds: lag.bucketsMs.map((b) => b / 1000), counts: lag.counts, count: lag.count, sum: lag.sumMs / 1000 });

    if (transport) {
      const status = transport.status();
      family('replica_peer_connected', 'gauge', '1 when the peer link is up.');
      for (const p of status.peers) out.push(`replica_peer_connected{peer="${esc(p.name)}"} ${p.connected ? 1 : 0}`);
      family('replica_peer_lag_entries', 'gauge', 'Local log entries the peer has not confirmed.');
      for (const p of status.peers) out.push(`replica_peer_lag_entries{peer="${esc(p.name)}"} ${p.lagEntries}`);
      family('replica_peer_lag_seconds', 'gauge', 'Age of the oldest entry the peer has not confirmed.');
      for (const p of status.peers) out.push(`replica_peer_lag_seconds{peer="${esc(p.name)}"} ${p.lagMs / 1000}`);
      family('replica_peer_applied_through', 'gauge', 'Highest origin sequence the peer confirmed as applied, per origin.');
      for (const p of status.peers) {
        for (const [origin, seq] of Object.entries(p.appliedThrough)) {
          out.push(`replica_peer_applied_through{peer="${esc(p.name)}",origin="${esc(origin)}"} ${seq}`);
        }
      }
      family('replica_transport_rejected_total', 'counter', 'Refused peer connections, by reason.');
      for (const [reason, n] of Object.entries(status.refused)) out.push(`replica_transport_rejected_total{reason="${esc(reason)}"} ${n}`);
      // Every figure a transport reports, as the kind it declares: counters as _total.
      const figures = (kind: 'counter' | 'gauge', prefix: string, rows: readonly { labels: string; values: Readonly<Record<string, number>> }[]) => {
        for (const key of new Set(rows.flatMap((r) => Object.keys(r.values)))) {
          const name = `${prefix}_${snake(key)}${kind === 'counter' ? '_total' : ''}`;
          family(name, kind, `Transport figure ${key}${prefix === 'replica_peer' ? ' per peer' : ''}.`);
          for (const r of rows) if (key in r.values) out.push(`${name}${r.labels} ${r.values[key]}`);
        }
      };
      const perPeer = (pick: (p: PeerStatus) => Readonly<Record<string, number>>) => status.peers.map((p) => ({ labels: `{peer="${esc(p.name)}"}`, values: pick(p) }));
      figures('counter', 'replica_peer', perPeer((p) => p.counters));
      figures('gauge', 'replica_peer', perPeer((p) => p.gauges));
      figures('counter', 'replica_transport', [{ labels: '', values: status.counters }]);
      figures('gauge', 'replica_transport', [{ labels: '', values: status.gauges }]);
    }

    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    family('process_resident_memory_bytes', 'gauge', 'Resident set size.');
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    family('process_heap_used_bytes', 'gauge', 'V8 heap in use.');
    out.push(`process_heap_used_bytes ${mem.heapUsed}`);
    family('process_cpu_seconds_total', 'counter', 'User and system CPU time.');
    out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
    return `${out.join('\n')}\n`;
  }
}
