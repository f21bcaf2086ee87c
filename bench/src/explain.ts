// `pnpm compare --explain`: where each path spends its CPU per replicated write.
//
// Method (reproducible with the one flag): every node runs with V8's sampling profiler
// (`--cpu-prof`, a sample per millisecond); around each measured round the bench reads
// every node thread's CPU time from /proc/<pid>/task/*/stat and notes the monotonic
// clock, which V8's sample timestamps share. After the cluster stops, each node's
// profile is cut to the round's window and every sample classified by its stack
// (below). The main thread's CPU from /proc is split in proportion to its non-idle
// samples per component; the other threads are counted whole (V8's helper threads for
// concurrent GC and compilation, libuv's pool, the profiler's own thread); brokers are their
// processes' CPU. So the components add up to what /proc says the processes spent,
// which the report checks against the run's own total.
//
// A sample belongs to the first frame, from the innermost outwards, that says what the
// work is for: storage or lmdb code is the store; fastify, node's HTTP or the node app
// is HTTP handling; node's TLS module is TLS; transport code is the transport, on the
// sending side (plexus sender, nats outbox and publisher) or the receiving side (plexus
// receiver and session, nats consumers), or shared (link and frame code, the nats
// client) when no frame further out says which. Library code that serves several
// (msgpackr, streams, events) defers to its caller. Native work that runs without a
// JavaScript frame on the stack — the event loop, socket I/O, TLS record encryption and
// decryption, which V8 cannot see into — is "(program)": reported as native I/O.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcStat } from './proc.js';

export const COMPONENTS = ['http', 'store', 'transportSend', 'transportReceive', 'transportShared', 'tls', 'nativeIo', 'gc', 'otherMain', 'v8Threads', 'poolThreads', 'profiler', 'broker'] as const;
export type Component = (typeof COMPONENTS)[number];

export const COMPONENT_LABELS: Readonly<Record<Component, string>> = {
  http: 'HTTP handling',
  store: 'store commit',
  transportSend: 'transport, sending',
  transportReceive: 'transport, receiving',
  transportShared: 'transport, shared',
  tls: 'TLS (JavaScript side)',
  nativeIo: 'native I/O: event loop, sockets, TLS crypto',
  gc: 'GC on the main thread',
  otherMain: 'other JavaScript',
  v8Threads: "V8's helper threads (concurrent GC, compiler)",
  poolThreads: 'other threads (libuv pool: LMDB async work, fs)',
  profiler: "the profiler's own thread",
  broker: 'nats-server processes',
};

/** CPU milliseconds per replicated write, by component; `sum` of the components, `total` measured for the processes as a whole. */
export interface Breakdown {
  readonly msPerWrite: Readonly<Record<Component, number>>;
  readonly sum: number;
  readonly total: number;
}

/** One thread of a process: its CPU seconds so far. */
export interface ThreadCpu {
  readonly tid: number;
  readonly main: boolean;
  readonly profiler: boolean;
  readonly cpuSec: number;
  /** When the thread started, in clock ticks since boot. */
  readonly startTick: number;
}

/** Every thread of process `pid` with its CPU so far (threads that exit between two reads are lost to both). */
export function readThreads(pid: number): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readProcStat(`/proc/${pid}/task/${t}/stat`);
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      out.push({ tid: Number(t), main: Number(t) === pid, profiler: comm.startsWith('v8:Prof'), ...stat });
    } catch {
      // the thread exited while being read
    }
  }
  return out;
}

/** CPU seconds of a process's threads between two reads, by kind. */
export interface ThreadDelta {
  readonly main: number;
  readonly profiler: number;
  /** V8's platform threads: created together before any JavaScript runs, the first helper threads to start. */
  readonly v8: number;
  /** Every other thread: libuv's pool (started on first use), and any other. */
  readonly pool: number;
}

/**
 * CPU seconds of a process's threads between two reads: the main thread, the profiler's
 * thread (by name), V8's platform threads (those that started in the first tick any
 * helper thread started in: node creates them together at start-up, before the libuv
 * pool, which starts on first use) and the rest.
 */
export function threadDelta(before: readonly ThreadCpu[], after: readonly ThreadCpu[]): ThreadDelta {
  const was = new Map(before.map((t) => [t.tid, t.cpuSec]));
  const helpers = after.filter((t) => !t.main && !t.profiler);
  const firstStart = Math.min(...helpers.map((t) => t.startTick));
  const d = { main: 0, profiler: 0, v8: 0, pool: 0 };
  for (const t of after) {
    const delta = t.cpuSec - (was.get(t.tid) ?? 0);
    if (t.main) d.main += delta;
    else if (t.profiler) d.profiler += delta;
    else if (t.startTick === firstStart) d.v8 += delta;
    else d.pool += delta;
  }
  return d;
}

/** The parts of a `.cpuprofile` this module reads. */
export interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string }; readonly children?: readonly number[] }[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

type Verdict = 'http' | 'store' | 'tls' | 'gc' | 'program' | 'idle' | 'other' | 'send' | 'receive' | 'shared' | null;

const RULES: readonly [RegExp, Verdict][] = [
  [/[/@]replica[/+]storage|\/packages\/storage\/|\/lmdb[@/]|\/ordered-binary[@/]/, 'store'],
  [/\/transport-plexus\/(dist|src)\/(receiver|session)\.|\/transport-nats\/(dist|src)\/(origin-consumer|discovery|resync)\./, 'receive'],
  [/\/transport-plexus\/(dist|src)\/(sender|subscription)\.|\/transport-nats\/(dist|src)\/(outbox|async-publisher|puback-order|confirmations)\./, 'send'],
  [/\/transport-(plexus|nats|api)\/|[/@]replica[/+]transport-|\/node_modules\/nats\/|\/\.pnpm\/nats@/, 'shared'],
  [/^node:_tls_|^node:tls$|^node:internal\/tls/, 'tls'],
  [/^node:_http_|\/fastify\/|\/@fastify\/|\/find-my-way\/|\/avvio\/|\/light-my-request\/|\/secure-json-parse\/|\/fast-json-stringify\/|\/apps\/node\/|[/@]replica[/+]node\//, 'http'],
  [/\/pino\/|\/sonic-boom\/|\/pino-std-serializers\//, 'other'],
];

function verdictOf(frame: { readonly functionName: string; readonly url: string }): Verdict {
  switch (frame.functionName) {
    case '(garbage collector)':
      return 'gc';
    case '(program)':
      return 'program';
    case '(idle)':
      return 'idle';
    case '(root)':
      return 'other';
  }
  for (const [re, v] of RULES) if (re.test(frame.url)) return v;
  return null;
}

/** Main-thread sample counts per component, idle samples apart. */
export type SampleCounts = Partial<Record<Component | 'idle', number>>;

/** Counts the samples of `profile` taken within [fromUs, toUs] (V8 monotonic microseconds) by component. */
export function classifyProfile(profile: CpuProfile, fromUs: number, toUs: number): SampleCounts {
  const parent = new Map<number, number>();
  const frames = new Map<number, CpuProfile['nodes'][number]['callFrame']>();
  for (const n of profile.nodes) {
    frames.set(n.id, n.callFrame);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, Component | 'idle'>();
  const componentOf = (leaf: number): Component | 'idle' => {
    const known = memo.get(leaf);
    if (known) return known;
    let transport = false;
    let result: Component | 'idle' | undefined;
    for (let id: number | undefined = leaf; id !== undefined && result === undefined; id = parent.get(id)) {
      const v = verdictOf(frames.get(id) as { functionName: string; url: string });
      if (v === null) continue;
      if (v === 'send') result = 'transportSend';
      else if (v === 'receive') result = 'transportReceive';
      else if (v === 'shared') transport = true;
      else if (transport) result = 'transportShared';
      else result = ({ http: 'http', store: 'store', tls: 'tls', gc: 'gc', program: 'nativeIo', idle: 'idle', other: 'otherMain' } as const)[v];
    }
    const c = result ?? (transport ? 'transportShared' : 'otherMain');
    memo.set(leaf, c);
    return c;
  };
  const counts: SampleCounts = {};
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const c = componentOf(profile.samples[i] as number);
    counts[c] = (counts[c] ?? 0) + 1;
  }
  return counts;
}

/** What one node's share of a round is made of: its threads' CPU and its main thread's samples. */
export interface NodeRound {
  readonly threads: ThreadDelta;
  readonly samples: SampleCounts;
}

/**
 * The breakdown of a round: every node's main-thread CPU split by its samples, its other
 * threads whole, the brokers' CPU; in ms per write. `total` is the round's own CPU of the
 * processes (ms per write), against which the components are checked.
 */
export function breakdownOf(nodes: readonly NodeRound[], brokerSec: number, writes: number, totalMsPerWrite: number): Breakdown {
  const sec: Record<Component, number> = Object.fromEntries(COMPONENTS.map((c) => [c, 0])) as Record<Component, number>;
  for (const n of nodes) {
    const busy = Object.entries(n.samples).reduce((s, [k, v]) => (k === 'idle' ? s : s + (v ?? 0)), 0);
    if (busy > 0) {
      for (const [k, v] of Object.entries(n.samples)) if (k !== 'idle') sec[k as Component] += (n.threads.main * (v ?? 0)) / busy;
    } else sec.otherMain += n.threads.main;
    sec.v8Threads += n.threads.v8;
    sec.poolThreads += n.threads.pool;
    sec.profiler += n.threads.profiler;
  }
  sec.broker += brokerSec;
  const ms = (s: number) => (writes > 0 ? Number(((s * 1000) / writes).toFixed(4)) : 0);
  const msPerWrite = Object.fromEntries(COMPONENTS.map((c) => [c, ms(sec[c])])) as Record<Component, number>;
  return { msPerWrite, sum: Number(COMPONENTS.reduce((s, c) => s + msPerWrite[c], 0).toFixed(4)), total: totalMsPerWrite };
}

/** The profile each node process wrote at exit into `dir` (`CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile`), by pid. */
export function readProfiles(dir: string): Map<number, CpuProfile> {
  const out = new Map<number, CpuProfile>();
  for (const f of readdirSync(dir)) {
    const m = /^CPU\.\d+\.\d+\.(\d+)\.0\.\d+\.cpuprofile$/.exec(f);
    if (m) out.set(Number(m[1]), JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile);
  }
  return out;
}

/** Now on V8's profile clock (CLOCK_MONOTONIC, microseconds). */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
