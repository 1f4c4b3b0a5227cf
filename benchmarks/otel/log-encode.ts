// CPU of the export worker's OTLP log encoder alone (receiver/otel/protobuf/logs.ts), per record, for the
// event shape of the synthetic probe (benchmarks/suite/events.ts): the same record batches the main thread
// posts (log-export-protocol.ts), encoded into requests of --batch records, in one process with no I/O.
// Prints ns per record (CPU of this thread) and the GC count and time per round. Rounds alternate: even
// rounds drop each request's bytes (as before LogsEncoder.release), odd rounds give them back (as the
// export worker does after a successful export): a same-process A/B; compare rounds past the first two.
// With --base DIR (another checkout), rounds alternate between its encoder and this one's instead (both
// giving the bytes back), --base-first deciding which goes first: run both orders.
//
//   node benchmarks/otel/log-encode.ts [--records 2000000] [--batch 8192] [--rounds 5] [--base DIR [--base-first]]
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KEY_INTERNED, type TableEntry } from '../../receiver/otel/log-export-protocol.ts';
import { LogsEncoder } from '../../receiver/otel/protobuf/logs.ts';

const { values: o } = parseArgs({
  options: {
    records: { type: 'string', default: '2000000' },
    batch: { type: 'string', default: '8192' },
    rounds: { type: 'string', default: '5' },
    base: { type: 'string' },
    'base-first': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (o.help) {
  console.log(
    'node benchmarks/otel/log-encode.ts [--records 2000000] [--batch 8192] [--rounds 5] [--base DIR [--base-first]]',
  );
  process.exit(0);
}
const N = Number(o.records);
const BATCH = Number(o.batch);
const POST = 256; // records per posted batch (log-export.ts POST_RECORDS)

const entity = Object.freeze({ 'k8s.node.name': 'node-1', 'podnet.entity.kind': 'host' });
const stack = [
  'kfree_skb_reason+0x0',
  'nf_hook_slow+0x9c',
  'ip_rcv+0x6f',
  '__netif_receive_skb_one_core+0x84',
];
const table: TableEntry[] = [];
const ids = new Map<unknown, number>();
const idx = (e: TableEntry): number => {
  let i = ids.get(e);
  if (i === undefined) {
    i = table.length;
    table.push(e);
    ids.set(e, i);
  }
  return i;
};

/** One posted batch of the synthetic probe's records, as EventExport.push lays them out. */
function batch(seq0: number): Float64Array {
  const d = new Float64Array(POST * 24);
  let p = 0;
  const sec = Math.floor(Date.now() / 1000);
  for (let r = 0; r < POST; r++) {
    const seq = seq0 + r;
    d[p++] = idx('podnet.synthetic.anomaly');
    d[p++] = idx('SYNTHETIC_DROP');
    d[p++] = 2; // WARN (severity.ts)
    d[p++] = sec;
    d[p++] = seq % 1_000_000;
    d[p++] = idx(entity);
    d[p++] = idx(stack);
    d[p++] = 8;
    const s = (k: string, v: string): void => {
      d[p++] = KEY_INTERNED + idx(k);
      d[p++] = idx(v);
    };
    const n = (k: string, v: number): void => {
      d[p++] = idx(k);
      d[p++] = v;
    };
    s('error.type', 'NETFILTER_DROP');
    s('network.transport', 'tcp');
    s('source.address', '10.0.0.1');
    n('source.port', 40000 + (seq % 1000));
    s('destination.address', '10.0.0.2');
    n('destination.port', 80);
    n('podnet.synthetic.latency_ms', seq % 200);
    n('podnet.synthetic.seq', seq);
  }
  return d.subarray(0, p);
}

let gcMs = 0;
let gcs = 0;
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    gcMs += e.duration;
    gcs++;
  }
}).observe({ entryTypes: ['gc'] });

const encOpts = { resource: { 'service.name': 'podnet' }, scopeName: 'podnet', scopeVersion: '1' };
const current = new LogsEncoder(encOpts);
const base =
  o.base === undefined
    ? undefined
    : (new (
        (await import(`${o.base.replace(/\/+$/, '')}/receiver/otel/protobuf/logs.ts`)) as {
          LogsEncoder: typeof LogsEncoder;
        }
      ).LogsEncoder(encOpts) as LogsEncoder);
let bytes = 0;
for (let round = 0; round < Number(o.rounds); round++) {
  // Odd rounds give each request's bytes back after it (an export that succeeded), even rounds do not; or
  // with --base, rounds alternate between the two checkouts' encoders.
  const useBase = base !== undefined && (round % 2 === 0) === o['base-first'];
  const enc = useBase ? base : current;
  const release = base !== undefined || round % 2 === 1;
  gcMs = 0;
  gcs = 0;
  const c0 = process.cpuUsage();
  for (let done = 0; done < N; done += POST) {
    const data = batch(done);
    const ms = Date.now();
    enc.add({ data, extra: [], table, at: 0, n: POST, observed: [Math.floor(ms / 1000), (ms % 1000) * 1e6] });
    if (enc.pending >= BATCH) {
      const b = enc.finish();
      bytes += b.length;
      if (release) enc.release(b);
    }
  }
  bytes += enc.finish().length;
  const c = process.cpuUsage(c0);
  await new Promise((r) => setTimeout(r, 10));
  console.log(
    JSON.stringify({
      round,
      encoder: useBase ? 'base' : 'current',
      release,
      nsPerRecord: +(((c.user + c.system) * 1000) / N).toFixed(1),
      bytesPerRecord: +(bytes / N / (round + 1)).toFixed(1),
      gcs,
      gcMs: +gcMs.toFixed(1),
    }),
  );
}
