// Versus node_exporter (Debian prometheus-node-exporter, the exporter operators run today): scrape
// latency and CPU of its netdev/netstat/sockstat collectors against podnet's /metrics for the host netns,
// and podnet's cost per extra netns. Both are scraped alternately once per interval (as Prometheus would,
// node_exporter then podnet) for the whole window; podnet's collection_interval = the scrape interval, so
// "CPU per scrape" is everything each process spent per cycle (node_exporter collects at scrape time,
// podnet on its timer and serves the latest collection).
//
// podnet configurations (one after another, node_exporter scraped alongside each):
//   like-for-like: host netns only, probes netdev + snmp + sockstat (the same /proc/net files)
//   default:       host netns only, the default probes
//   +N netns:      default probes, host + N test netns (cost per extra pod netns)
//
//   node benchmarks/suite/node-exporter.ts [--seconds 30] [--interval 1s] [--netns 100] [--quick]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { freePort, startPodnet } from '../lib/podnet.ts';
import { CpuWindow, rssBytes } from '../lib/proc.ts';
import { emitSection, type Table } from '../lib/results.ts';
import { fmt, int, median, quantile, sleep } from '../lib/stats.ts';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string' },
    interval: { type: 'string' },
    netns: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const seconds = Number(o.seconds ?? (o.quick ? 2 : 30));
const intervalMs = Number((o.interval ?? '1s').replace(/s$/, '')) * 1000;
const extraNetns = Number(o.netns ?? (o.quick ? 3 : 100));
const prefix = `pnk${process.pid}x`;
const started = performance.now();

async function scrape(url: string): Promise<{ ms: number; bytes: number; lines: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  let lines = 0;
  for (const l of text.split('\n')) if (l && l[0] !== '#') lines++;
  return { ms, bytes: text.length, lines };
}

function makeNetns(n: number): void {
  if (n === 0) return;
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${names.map((x) => `netns add ${x}`).join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'pnk-ne-'));
  try {
    writeFileSync(
      join(dir, 'links'),
      'link set lo up\nlink add eth0 type veth peer name peer0\nlink set eth0 up\nlink set peer0 up\n',
    );
    writeFileSync(join(dir, 'names'), `${names.join('\n')}\n`);
    execFileSync(
      'sh',
      ['-c', `while read n; do ip -n "$n" -batch ${dir}/links || exit 1; done < ${dir}/names`],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Side {
  scrapeMs: number[];
  bytes: number;
  lines: number;
  cpuS: number;
  rssMb: number;
}
interface Result {
  config: string;
  entities: number;
  ne: Side;
  podnet: Side;
  scrapes: number;
  wall: number;
}

const nePort = await freePort();
const ne: ChildProcess = spawn(
  NODE_EXPORTER,
  [
    `--web.listen-address=127.0.0.1:${nePort}`,
    '--collector.disable-defaults',
    '--collector.netdev',
    '--collector.netstat',
    '--collector.sockstat',
  ],
  { stdio: ['ignore', 'ignore', 'ignore'] },
);
const neUrl = `http://127.0.0.1:${nePort}/metrics`;
const results: Result[] = [];
const neVersion = execFileSync(NODE_EXPORTER, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
try {
  for (let i = 0; i < 50; i++) {
    try {
      await scrape(neUrl);
      break;
    } catch {
      await sleep(100);
    }
  }
  makeNetns(extraNetns);
  const off = Object.fromEntries(probeSpecs.map((s) => [s.name, { enabled: false }]));
  const configs = [
    {
      name: 'like-for-like (netdev + snmp + sockstat, host netns)',
      probes: { ...off, netdev: { enabled: true }, snmp: { enabled: true }, sockstat: { enabled: true } },
      netns: false,
    },
    { name: 'default probes, host netns', probes: {}, netns: false },
    { name: `default probes, host + ${extraNetns} netns`, probes: {}, netns: true },
  ];
  for (const c of configs) {
    const podnet = await startPodnet({
      config: { collection_interval: `${intervalMs}ms`, cardinality_limit: 1_000_000, probes: c.probes },
      ...(c.netns ? { netnsPrefix: prefix } : { hostOnly: true }),
      collections: o.quick ? 1 : 2,
    });
    const pUrl = `${podnet.url}/metrics`;
    try {
      // One warm-up scrape each.
      await scrape(neUrl);
      await scrape(pUrl);
      const neSide: Side = { scrapeMs: [], bytes: 0, lines: 0, cpuS: 0, rssMb: 0 };
      const pSide: Side = { scrapeMs: [], bytes: 0, lines: 0, cpuS: 0, rssMb: 0 };
      const win = new CpuWindow([ne.pid!, podnet.pid]).start();
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < seconds * 1000) {
        const tick = performance.now();
        const a = await scrape(neUrl);
        const b = await scrape(pUrl);
        neSide.scrapeMs.push(a.ms);
        pSide.scrapeMs.push(b.ms);
        neSide.bytes = a.bytes;
        neSide.lines = a.lines;
        pSide.bytes = b.bytes;
        pSide.lines = b.lines;
        n++;
        const left = intervalMs - (performance.now() - tick);
        if (left > 0) await sleep(left);
      }
      const w = win.stop();
      neSide.cpuS = w.cpu[0] ?? 0;
      pSide.cpuS = w.cpu[1] ?? 0;
      neSide.rssMb = rssBytes(ne.pid!) / 2 ** 20;
      pSide.rssMb = rssBytes(podnet.pid) / 2 ** 20;
      const st = await podnet.status();
      results.push({
        config: c.name,
        entities: (st.entities as unknown[]).length,
        ne: neSide,
        podnet: pSide,
        scrapes: n,
        wall: w.wall,
      });
      console.log(
        `${c.name}: scrape median node_exporter ${fmt(median(neSide.scrapeMs), 2)} ms podnet ${fmt(median(pSide.scrapeMs), 2)} ms; CPU per scrape ${fmt((neSide.cpuS * 1000) / n, 2)} vs ${fmt((pSide.cpuS * 1000) / n, 2)} ms`,
      );
    } finally {
      await podnet.stop();
    }
  }
} finally {
  ne.kill('SIGTERM');
  if (extraNetns > 0)
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: `${Array.from({ length: extraNetns }, (_, i) => `netns del ${prefix}${i}`).join('\n')}\n`,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
}

const per = (s: Side, n: number) => (s.cpuS * 1000) / n;
const table: Table = {
  headers: [
    'podnet configuration',
    'entities',
    'scrape ms median (p95): node_exporter',
    'podnet',
    'latency ratio podnet / node_exporter',
    'CPU ms per scrape cycle: node_exporter',
    'podnet',
    'CPU ratio',
    'samples: node_exporter',
    'podnet',
    'RSS MB: node_exporter',
    'podnet',
  ],
  rows: results.map((r) => [
    r.config,
    int(r.entities),
    `${fmt(median(r.ne.scrapeMs), 2)} (${fmt(quantile(r.ne.scrapeMs, 0.95), 2)})`,
    `${fmt(median(r.podnet.scrapeMs), 2)} (${fmt(quantile(r.podnet.scrapeMs, 0.95), 2)})`,
    fmt(median(r.podnet.scrapeMs) / median(r.ne.scrapeMs), 2),
    fmt(per(r.ne, r.scrapes), 2),
    fmt(per(r.podnet, r.scrapes), 2),
    fmt(per(r.podnet, r.scrapes) / per(r.ne, r.scrapes), 2),
    int(r.ne.lines),
    int(r.podnet.lines),
    fmt(r.ne.rssMb, 0),
    fmt(r.podnet.rssMb, 0),
  ]),
};
const notes: string[] = [];
const host = results[1];
const plus = results[2];
if (host && plus) {
  const dn = plus.entities - host.entities;
  notes.push(
    `Cost per extra netns (default probes, ${host.entities} → ${plus.entities} entities): ${fmt((per(plus.podnet, plus.scrapes) - per(host.podnet, host.scrapes)) / dn, 3)} ms CPU per cycle, ${fmt((median(plus.podnet.scrapeMs) - median(host.podnet.scrapeMs)) / dn, 3)} ms scrape latency, ${fmt((plus.podnet.lines - host.podnet.lines) / dn, 0)} samples, ${fmt(((plus.podnet.rssMb - host.podnet.rssMb) * 1024) / dn, 0)} KB RSS. node_exporter has no per-pod view at all (its collectors read the host netns only).`,
  );
}
notes.push(
  `node_exporter: ${neVersion}, \`--collector.disable-defaults --collector.netdev --collector.netstat --collector.sockstat\`. CPU = utime + stime of each process over the window (/proc/<pid>/stat, 10 ms ticks) divided by the scrapes.`,
);
emitSection({
  id: 'node-exporter',
  title: 'Versus node_exporter: scrape latency and CPU',
  commands: [
    `node benchmarks/suite/node-exporter.ts --seconds ${seconds} --interval ${intervalMs / 1000}s --netns ${extraNetns}`,
  ],
  method: [
    `Both endpoints scraped alternately (node_exporter, then podnet) once every ${intervalMs / 1000} s for ${seconds} s per podnet configuration; podnet collection_interval = ${intervalMs / 1000} s, so each scrape cycle includes one podnet collection.`,
    'Latency = wall time of the HTTP GET including reading the body, from this (client) process.',
  ],
  tables: [table],
  targets: [],
  notes,
  durationS: (performance.now() - started) / 1000,
  data: results,
});
