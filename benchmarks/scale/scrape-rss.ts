// What one /metrics scrape adds to podnet's memory at N netns (issue 19: the 1,000-netns RSS row's end and
// peak samples are taken right after a scrape of the ~34 MB exposition): podnet as `npm start` runs it (the
// scale benchmark's config: default probes, OTLP/HTTP metrics export to the counting sink, entities = host +
// the test's netns), after two collections: RSS (VmRSS sampled every 2 ms by this process) before, at its
// largest during and after one gzip scrape (as Prometheus asks), one plain scrape, then 20 full /status
// polls; and process.memoryUsage() and RssAnon deltas around each. Each --root is a checkout (a worktree of
// a baseline), run one after the other, --rounds times, interleaved. A diagnosis for same-invocation A/B
// comparisons, not a RESULTS section: the figures move with the machine's load and where a GC lands.
//
//   node benchmarks/scale/scrape-rss.ts [--netns 1000] [--rounds 2] [--root NAME=DIR]...
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { finish } from '../lib/finish.ts';
import { createNetnsBatch, removeNetnsBatch } from '../lib/netns-batch.ts';
import { startSink } from '../lib/otlp-sink.ts';
import type { PodnetOptions, PodnetProc } from '../lib/podnet.ts';
import { sleep } from '../lib/stats.ts';

const { values: o } = parseArgs({
  options: {
    netns: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    root: { type: 'string', multiple: true },
  },
});
const n = Number(o.netns);
const rounds = Number(o.rounds);
if (!(n >= 1 && rounds >= 1)) throw new Error('--netns N (>= 1) and --rounds R (>= 1) are numbers');
const HERE = new URL('../../', import.meta.url).pathname;
const roots = (o.root ?? ['now=.']).map((spec) => {
  const eq = spec.indexOf('=');
  const dir = eq > 0 ? spec.slice(eq + 1) : spec;
  return {
    name: eq > 0 ? spec.slice(0, eq) : 'now',
    root: dir === '.' ? HERE : `${dir.replace(/\/+$/, '')}/`,
  };
});

const mb = (pid: number, key: string): number => {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${key}`);
  return Number(m[1]) / 1024;
};

interface Row {
  variant: string;
  round: number;
  what: string;
  ms: number;
  rssBefore: number;
  rssMax: number;
  rssAfter: number;
  dAnon: number;
  dHeapTotal: number;
  dHeapUsed: number;
  dArrayBuffers: number;
}
const rows: Row[] = [];
const failures: string[] = [];
const prefix = `pnr${process.pid}`;
createNetnsBatch(prefix, n);
const sink = await startSink();
try {
  for (let round = 0; round < rounds; round++)
    for (const v of roots) {
      const lib = (await import(`${v.root}benchmarks/lib/podnet.ts`)) as {
        startPodnet: (o: PodnetOptions) => Promise<PodnetProc>;
      };
      const p = await lib.startPodnet({
        root: v.root,
        asStarted: true,
        config: {
          collection_interval: '15s',
          cardinality_limit: 1_000_000,
          exporters: {
            otlp: { enabled: true, endpoint: sink.endpoint, protocol: 'http/protobuf', logs: false },
          },
        },
        netnsPrefix: `${prefix}n`,
        collections: 1,
        startTimeoutMs: 300_000,
      });
      try {
        const c0 = await p.collections();
        while ((await p.collections()) < c0 + 2) await sleep(500);
        await sleep(3000);
        const measure = async (what: string, f: () => Promise<void>) => {
          const m0 = await p.memoryUsage();
          const anon0 = mb(p.pid, 'RssAnon');
          const rssBefore = mb(p.pid, 'VmRSS');
          let rssMax = rssBefore;
          const t = setInterval(() => {
            rssMax = Math.max(rssMax, mb(p.pid, 'VmRSS'));
          }, 2);
          const t0 = performance.now();
          await f();
          const ms = performance.now() - t0;
          await sleep(200);
          clearInterval(t);
          const m1 = await p.memoryUsage();
          const d = (k: keyof NodeJS.MemoryUsage) => (m1[k] - m0[k]) / 2 ** 20;
          rows.push({
            variant: v.name,
            round,
            what,
            ms,
            rssBefore,
            rssMax,
            rssAfter: mb(p.pid, 'VmRSS'),
            dAnon: mb(p.pid, 'RssAnon') - anon0,
            dHeapTotal: d('heapTotal'),
            dHeapUsed: d('heapUsed'),
            dArrayBuffers: d('arrayBuffers'),
          });
        };
        const scrape = async (headers: Record<string, string>) => {
          const r = await fetch(`${p.url}/metrics`, { headers });
          const body = await r.arrayBuffer();
          if (!r.ok || body.byteLength < n * 1000)
            failures.push(`${v.name}: /metrics ${r.status}, ${body.byteLength} bytes`);
        };
        await measure('/metrics gzip', () => scrape({ 'accept-encoding': 'gzip' }));
        await measure('/metrics plain', () => scrape({ 'accept-encoding': 'identity' }));
        await measure('/status full × 20', async () => {
          for (let i = 0; i < 20; i++) await p.status();
        });
      } finally {
        await p.stop();
      }
    }
} finally {
  await sink.stop();
  removeNetnsBatch(prefix, n);
}
const f = (x: number) => x.toFixed(1);
const lines = [
  `| variant | round | request | ms | RSS MB before | max during | after | Δ RssAnon | Δ heapTotal | Δ heapUsed | Δ arrayBuffers |`,
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.variant} | ${r.round + 1} | ${r.what} | ${Math.round(r.ms)} | ${f(r.rssBefore)} | ${f(r.rssMax)} | ${f(r.rssAfter)} | ${f(r.dAnon)} | ${f(r.dHeapTotal)} | ${f(r.dHeapUsed)} | ${f(r.dArrayBuffers)} |`,
  ),
];
finish(
  `${n} netns, ${rounds} round(s); load at the end ${readFileSync('/proc/loadavg', 'utf8').trim()}\n${lines.join('\n')}`,
  failures,
);
