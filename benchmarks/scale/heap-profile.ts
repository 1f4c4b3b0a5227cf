// Where podnet's memory goes at N netns (issue 19): podnet as `npm start` runs it (the scale benchmark's
// config: default probes, OTLP/HTTP metrics export to the counting sink, entities = host + the test's netns),
// after some collections and one /metrics scrape: its RSS parts, process.memoryUsage(), RSS by kind of
// mapping (/proc/<pid>/smaps: V8 heap pages, glibc's arenas, files), then a V8 heap snapshot
// (`node --heapsnapshot-signal=SIGURG`) summarized by constructor, by first retainer and ArrayBuffer holder
// (benchmarks/lib/heap-summary.ts). A diagnosis, not a benchmark with a target: no RESULTS section.
//
//   node benchmarks/scale/heap-profile.ts [--netns 1000] [--collections 3] [--interval 5s] [--root DIR]
//                                         [--top 30] [--keep FILE]
//
// --root: another checkout (e.g. a worktree of main) to profile instead of this one. --keep: also write the
// snapshot to FILE (for Chrome DevTools' Memory tab).
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Rows, summarizeHeap, summarizeSmaps } from '../lib/heap-summary.ts';
import { createNetnsBatch, removeNetnsBatch } from '../lib/netns-batch.ts';
import { startSink } from '../lib/otlp-sink.ts';
import type { PodnetOptions, PodnetProc } from '../lib/podnet.ts';
import { sleep } from '../lib/stats.ts';

const { values: o } = parseArgs({
  options: {
    netns: { type: 'string', default: '1000' },
    collections: { type: 'string', default: '3' },
    interval: { type: 'string', default: '5s' },
    root: { type: 'string' },
    top: { type: 'string', default: '30' },
    keep: { type: 'string' },
  },
});
const n = Number(o.netns);
const collections = Number(o.collections);
const intervalS = Number(o.interval.replace(/s$/, ''));
const top = Number(o.top);
if (!(n >= 0 && collections >= 1 && intervalS > 0 && top > 0))
  throw new Error('--netns N (>= 0), --collections K (>= 1), --interval Ns and --top T (> 0) are numbers');
const root = o.root ? `${o.root.replace(/\/+$/, '')}/` : new URL('../../', import.meta.url).pathname;
const { startPodnet } = (await import(`${root}benchmarks/lib/podnet.ts`)) as {
  startPodnet: (o: PodnetOptions) => Promise<PodnetProc>;
};

const MB = 2 ** 20;
const mb = (bytes: number) => (bytes / MB).toFixed(2).padStart(8);
function print(title: string, rows: Rows): void {
  console.log(`\n## ${title}\n     MB    count  bytes each  what`);
  for (const [what, bytes, count] of rows)
    console.log(
      `${mb(bytes)} ${String(count).padStart(8)} ${String(Math.round(bytes / count)).padStart(11)}  ${what}`,
    );
}

const prefix = `pnh${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'pnk-heap-'));
const sink = await startSink();
let created = false;
try {
  createNetnsBatch(prefix, n);
  created = true;
  // podnet writes the snapshot into its working directory: ours, a temp dir.
  process.chdir(dir);
  const podnet = await startPodnet({
    asStarted: true,
    root,
    nodeArgs: ['--heapsnapshot-signal=SIGURG'],
    config: {
      collection_interval: `${intervalS}s`,
      cardinality_limit: 1_000_000,
      exporters: {
        otlp: { enabled: true, endpoint: sink.endpoint, protocol: 'http/protobuf', logs: false },
      },
    },
    netnsPrefix: prefix,
    collections: 1,
    startTimeoutMs: 300_000,
  });
  try {
    const c0 = await podnet.collections();
    while ((await podnet.collections()) < c0 + collections) await sleep(200);
    const scrape = await podnet.metrics();
    const status = readFileSync(`/proc/${podnet.pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    const mem = await podnet.memoryUsage();
    const smaps = readFileSync(`/proc/${podnet.pid}/smaps`, 'utf8');
    console.log(
      `# ${podnet.command} at ${n} netns, after ${collections} collections (${intervalS} s) and one /metrics scrape (${(scrape.text.length / MB).toFixed(1)} MB)`,
    );
    console.log(
      `RSS ${(kb('VmRSS') / 1024).toFixed(1)} MB (peak ${(kb('VmHWM') / 1024).toFixed(1)}): anon ${(kb('RssAnon') / 1024).toFixed(1)}, file ${(kb('RssFile') / 1024).toFixed(1)}, shmem ${(kb('RssShmem') / 1024).toFixed(1)}`,
    );
    console.log(
      `V8 heap used ${(mem.heapUsed / MB).toFixed(1)} / total ${(mem.heapTotal / MB).toFixed(1)} MB, external ${(mem.external / MB).toFixed(1)} MB (ArrayBuffers ${(mem.arrayBuffers / MB).toFixed(1)})`,
    );
    print('RSS by mapping (/proc/<pid>/smaps)', summarizeSmaps(smaps));
    process.kill(podnet.pid, 'SIGURG');
    // The snapshot is complete when its size stops changing (V8 writes it in one go, then closes it).
    let file: string | undefined;
    for (let last = -1, i = 0; i < 600; i++) {
      await sleep(500);
      const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot'));
      if (f === undefined) continue;
      const size = statSync(join(dir, f)).size;
      if (size > 0 && size === last) {
        file = join(dir, f);
        break;
      }
      last = size;
    }
    if (file === undefined) throw new Error('podnet wrote no heap snapshot in 300 s');
    if (o.keep) copyFileSync(file, o.keep);
    const heap = summarizeHeap(readFileSync(file, 'utf8'), top);
    console.log(
      `\nheap snapshot: ${(heap.totalBytes / MB).toFixed(1)} MB of self sizes (taken after a full GC)`,
    );
    print('V8 heap by constructor', heap.byConstructor);
    print('V8 heap by first retainer (object.property)', heap.byRetainer);
    print('ArrayBuffer backing stores (outside the V8 heap) by holder', heap.arrayBuffers);
  } finally {
    await podnet.stop();
  }
} finally {
  process.chdir(tmpdir());
  rmSync(dir, { recursive: true, force: true });
  await sink.stop();
  if (created) removeNetnsBatch(prefix, n);
}
