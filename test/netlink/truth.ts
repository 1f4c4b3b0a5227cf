// Ground truth for the netlink probe tests: what `ss`, `conntrack` and `tc` print in one netns, turned
// into the values each probe must report, and the probe points keyed the same way. `run` executes a tool
// inside the netns under test: `nsRun(name)` for a named netns, `pidRun(pid)` for a pod (nsenter), or the
// host's own `sh`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ENTRIES, LIMIT, metricName } from '../../probes/conntrack/conntrack.ts';
import { Q } from '../../probes/qdisc/qdisc.ts';
import { M } from '../../probes/sockets/sockets.ts';
import type { HistogramValue, MetricPoint } from '../../receiver/probe/types.ts';
import { inNs, sh } from './env.ts';

export type Runner = (cmd: string, args: string[]) => string;

export const nsRun =
  (ns: string): Runner =>
  (cmd, args) =>
    inNs(ns, cmd, args);

export const pidRun =
  (pid: number): Runner =>
  (cmd, args) =>
    sh('nsenter', [`--net=/proc/${pid}/ns/net`, cmd, ...args]);

export const hostRun: Runner = (cmd, args) => sh(cmd, args);

// --- sockets (ss -tanmi / -uanm) ---

const SS_STATE: Record<string, string> = {
  ESTAB: 'established',
  'SYN-SENT': 'syn_sent',
  'SYN-RECV': 'syn_received',
  'FIN-WAIT-1': 'fin_wait_1',
  'FIN-WAIT-2': 'fin_wait_2',
  'TIME-WAIT': 'time_wait',
  UNCONN: 'closed',
  CLOSE: 'closed',
  'CLOSE-WAIT': 'close_wait',
  'LAST-ACK': 'last_ack',
  LISTEN: 'listen',
  CLOSING: 'closing',
};
const SKMEM_KEYS = ['r', 'rb', 't', 'tb', 'f', 'w', 'o', 'bl', 'd'] as const;
const MEM_METRICS = [
  'rmem_alloc',
  'rcvbuf',
  'wmem_alloc',
  'sndbuf',
  'fwd_alloc',
  'wmem_queued',
  'optmem',
  'backlog',
];
export const BOUNDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

function parseSkmem(line: string): number[] {
  const m = /skmem:\(([^)]*)\)/.exec(line);
  if (!m) return [];
  const kv = new Map<string, number>();
  for (const part of m[1]!.split(',')) {
    const mm = /^([a-z]+)(\d+)$/.exec(part);
    if (mm) kv.set(mm[1]!, Number(mm[2]));
  }
  return SKMEM_KEYS.map((k) => kv.get(k) ?? 0);
}

/** What the sockets probe must report, computed from `ss` output of one netns. */
export function ssTruth(run: Runner): Map<string, number | HistogramValue> {
  const exp = new Map<string, number | HistogramValue>();
  const states = new Map<string, number>(Object.values(SS_STATE).map((s) => [s, 0]));
  let rx = 0;
  let tx = 0;
  const mem = new Array<number>(9).fill(0);
  let lq = 0;
  let ll = 0;
  let fillMax = 0;
  let atRisk = 0;
  const counts = new Array<number>(BOUNDS.length + 1).fill(0);
  let rttSum = 0;
  let rttCount = 0;
  let retrans = 0;
  let bytesRetrans = 0;
  for (const line of run('ss', ['-H', '-O', '-tanmi']).split('\n').filter(Boolean)) {
    const [st, rq, sq] = line.trim().split(/\s+/);
    const state = SS_STATE[st!];
    assert.ok(state, `unknown ss state ${st}`);
    states.set(state, states.get(state)! + 1);
    const sk = parseSkmem(line);
    sk.forEach((v, i) => {
      mem[i]! += v;
    });
    if (state === 'listen') {
      lq += Number(rq);
      ll += Number(sq);
      const fill = Number(sq) > 0 ? Number(rq) / Number(sq) : Number(rq) > 0 ? 1 : 0;
      fillMax = Math.max(fillMax, fill);
      if (fill >= 0.8 && Number(rq) > 0) atRisk++;
      continue;
    }
    rx += Number(rq);
    tx += Number(sq);
    const rtt = / rtt:([\d.]+)\//.exec(line);
    if (rtt) {
      const us = Math.round(Number(rtt[1]) * 1000);
      const v = us / 1e6;
      let i = 0;
      while (i < BOUNDS.length && v > BOUNDS[i]!) i++;
      counts[i]!++;
      rttSum += us;
      rttCount++;
    }
    const re = / retrans:\d+\/(\d+)/.exec(line);
    if (re) retrans += Number(re[1]);
    const br = / bytes_retrans:(\d+)/.exec(line);
    if (br) bytesRetrans += Number(br[1]);
  }
  for (const [s, v] of states) exp.set(`${M.connections}|${s}`, v);
  exp.set(M.rxQueue, rx);
  exp.set(M.txQueue, tx);
  MEM_METRICS.forEach((f, i) => {
    exp.set(M.mem(f), mem[i]!);
  });
  exp.set(M.drops, mem[8]!);
  exp.set(M.listenQueue, lq);
  exp.set(M.listenLimit, ll);
  exp.set(M.listenFillMax, fillMax);
  exp.set(M.listenAtRisk, atRisk);
  exp.set(M.rtt, { boundaries: BOUNDS, counts, sum: rttSum / 1e6, count: rttCount });
  exp.set(M.retrans, retrans);
  exp.set(M.retransBytes, bytesRetrans);
  let udp = 0;
  let urx = 0;
  let utx = 0;
  let udrops = 0;
  for (const line of run('ss', ['-H', '-O', '-uanm']).split('\n').filter(Boolean)) {
    const [, rq, sq] = line.trim().split(/\s+/);
    udp++;
    urx += Number(rq);
    utx += Number(sq);
    udrops += parseSkmem(line)[8] ?? 0;
  }
  exp.set(M.udpCount, udp);
  exp.set(M.udpRx, urx);
  exp.set(M.udpTx, utx);
  exp.set(M.udpDrops, udrops);
  return exp;
}

/** Sockets probe points of one netns keyed by metric (and `|state` for connection counts). */
export function socketValues(
  points: readonly MetricPoint[],
  netns: number,
): Map<string, number | HistogramValue> {
  const m = new Map<string, number | HistogramValue>();
  for (const p of points) {
    if (p.netns !== netns) continue;
    const st = p.attributes?.['network.connection.state'];
    m.set(st === undefined ? p.metric : `${p.metric}|${st}`, p.value);
  }
  return m;
}

/** The observations one collection added to the cumulative RTT histogram (cur − prev). */
export function rttStep(prev: HistogramValue | undefined, cur: HistogramValue): HistogramValue {
  if (!prev) return cur;
  return {
    boundaries: cur.boundaries,
    counts: cur.counts.map((c, i) => c - prev.counts[i]!),
    // Sums are whole µs over 1e6: recompute from µs so the difference is exact.
    sum: (Math.round(cur.sum * 1e6) - Math.round(prev.sum * 1e6)) / 1e6,
    count: cur.count - prev.count,
  };
}

// --- conntrack (conntrack -S / -C) ---

/** `conntrack -S` summed over CPUs + `conntrack -C`, keyed by our metric names. */
export function conntrackTruth(run: Runner): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of run('conntrack', ['-S']).split('\n').filter(Boolean)) {
    for (const [, k, v] of line.matchAll(/(\w+)=(\d+)/g)) {
      if (k === 'cpu') continue;
      const stat = k === 'chaintoolong' ? 'chain_toolong' : k!;
      m.set(metricName(stat), (m.get(metricName(stat)) ?? 0) + Number(v));
    }
  }
  m.set(ENTRIES, Number(run('conntrack', ['-C']).trim()));
  m.set(LIMIT, Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8')));
  return m;
}

/** Conntrack probe points of one netns keyed by metric. */
export function conntrackValues(points: readonly MetricPoint[], netns: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of points) if (p.netns === netns) m.set(p.metric, p.value as number);
  return m;
}

// --- qdisc (tc -s -j qdisc show) ---

interface TcQdisc {
  kind: string;
  handle: string;
  dev: string;
  root?: boolean;
  parent?: string;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  backlog: number;
  qlen: number;
}

export const qdiscKey = (dev: string, kind: string, handle: string, parent: string) =>
  `${dev}|${kind}|${handle}|${parent}`;

/** `tc -s -j qdisc show` rows (lo excluded) keyed by dev|kind|handle|parent. */
export function qdiscTruth(run: Runner): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const q of JSON.parse(run('tc', ['-s', '-j', 'qdisc', 'show'])) as TcQdisc[]) {
    if (q.dev === 'lo') continue;
    m.set(qdiscKey(q.dev, q.kind, q.handle, q.root ? 'root' : q.parent!), [
      q.bytes,
      q.packets,
      q.drops,
      q.overlimits,
      q.requeues,
      q.qlen,
      q.backlog,
    ]);
  }
  return m;
}

const ORDER = [Q.bytes, Q.packets, Q.drops, Q.overlimits, Q.requeues, Q.qlen, Q.backlog];

/** Qdisc probe points of one netns as rows in the order of ORDER. */
export function qdiscValues(points: readonly MetricPoint[], netns: number): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const p of points) {
    if (p.netns !== netns) continue;
    const a = p.attributes!;
    const k = qdiscKey(
      a['network.interface.name'] as string,
      a['podnet.qdisc.kind'] as string,
      a['podnet.qdisc.handle'] as string,
      a['podnet.qdisc.parent'] as string,
    );
    const row = m.get(k) ?? new Array<number>(ORDER.length).fill(-1);
    row[ORDER.indexOf(p.metric as (typeof ORDER)[number])] = p.value as number;
    m.set(k, row);
  }
  return m;
}

export const sortedRows = (m: Map<string, number[]>) => [...m].sort(([a], [b]) => a.localeCompare(b));
