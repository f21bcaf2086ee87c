// The load generator: keep-alive HTTP/1.1 over raw sockets, one request in flight per
// connection, bodies built per request. It runs in its own process so it never shares
// an event loop with a server under test, and it reports its own CPU so a run can show
// it was not the bottleneck. (autocannon spent more CPU per request than the bare
// fastify server it measured, on this 2-core machine.)
// Reads its job from argv[2] (JSON), prints one JSON result line on stdout.
import { connect, type Socket } from 'node:net';
import { idSource, recordJson, type IdMode } from './records.js';

export interface LoadJob {
  readonly urls: readonly string[];
  readonly connections: number;
  /** Stop issuing requests after this many seconds… */
  readonly durationSec: number;
  /** …or after this many requests, whichever comes first (0: no limit). */
  readonly maxRequests?: number;
  readonly ids: IdMode;
  readonly table: string;
  readonly idPrefix: string;
}

export interface LoadResult {
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly maxMs: number;
  readonly cpuSec: number;
  readonly recordBytes: number;
  /** Wall-clock ms (Date.now) of the first request and the last response. */
  readonly firstMs: number;
  readonly lastMs: number;
  /** Ids of the 2xx writes, when asked for (cluster runs verify them). */
  readonly statusCounts: Record<string, number>;
}

/** Latency histogram: 0.05 ms buckets up to 30 s. */
class Histogram {
  static readonly RES = 0.05;
  readonly buckets = new Uint32Array(Math.ceil(30_000 / Histogram.RES) + 1);
  count = 0;
  max = 0;
  record(ms: number): void {
    const i = Math.min(this.buckets.length - 1, Math.floor(ms / Histogram.RES));
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }
  percentile(p: number): number {
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] as number;
      if (seen >= target && seen > 0) return Number(((i + 1) * Histogram.RES).toFixed(2));
    }
    return 0;
  }
}

async function run(job: LoadJob): Promise<LoadResult> {
  const nextId = idSource(job.ids, job.idPrefix);
  let n = 0;
  const hist = new Histogram();
  const statusCounts: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let issued = 0;
  const limit = job.maxRequests && job.maxRequests > 0 ? job.maxRequests : Number.POSITIVE_INFINITY;
  const cpu0 = process.cpuUsage();
  const firstMs = Date.now();
  let lastMs = firstMs;
  const t0 = performance.now();
  const deadline = t0 + job.durationSec * 1000;
  const recordBytes = Buffer.byteLength(recordJson('00000000-0000-4000-8000-000000000000', 123456));

  const targets = job.urls.map((u) => new URL(u));
  const connection = (target: URL): Promise<void> =>
    new Promise((resolve) => {
      const head = `POST /${job.table} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: `;
      let socket: Socket;
      let buf = '';
      let sentAt = 0;
      let retries = 0;
      const send = () => {
        if (issued >= limit || performance.now() >= deadline) {
          socket.end();
          return resolve();
        }
        issued++;
        const body = recordJson(nextId(), n++);
        sentAt = performance.now();
        socket.write(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
      };
      const open = () => {
        socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
        socket.setEncoding('latin1');
        socket.on('connect', send);
        socket.on('data', (chunk: string) => {
          buf += chunk;
          for (;;) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const m = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end));
            const bodyLen = m ? Number(m[1]) : 0;
            if (buf.length < end + 4 + bodyLen) return;
            const status = buf.slice(9, 12);
            buf = buf.slice(end + 4 + bodyLen);
            hist.record(performance.now() - sentAt);
            statusCounts[status] = (statusCounts[status] ?? 0) + 1;
            if (status[0] === '2') ok++;
            else non2xx++;
            lastMs = Date.now();
            send();
          }
        });
        socket.on('error', () => {
          errors++;
        });
        socket.on('close', () => {
          // A connection lost mid-request: reconnect a bounded number of times.
          if (issued < limit && performance.now() < deadline && retries++ < 10) {
            buf = '';
            setTimeout(open, 50);
          } else resolve();
        });
      };
      open();
    });

  await Promise.all(Array.from({ length: job.connections }, (_, i) => connection(targets[i % targets.length] as URL)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    ok,
    non2xx,
    errors,
    seconds,
    perSec: ok / seconds,
    p50: hist.percentile(50),
    p99: hist.percentile(99),
    maxMs: Number(hist.max.toFixed(2)),
    cpuSec: (cpu.user + cpu.system) / 1e6,
    recordBytes,
    firstMs,
    lastMs,
    statusCounts,
  };
}

const job = JSON.parse(process.argv[2] ?? '{}') as LoadJob;
process.stdout.write(`${JSON.stringify(await run(job))}\n`);
