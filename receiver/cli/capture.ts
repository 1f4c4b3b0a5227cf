// `podnet capture`: a pcapng of one entity's traffic, captured here (this node, as root) or by a
// podnet server on another node (--url, through kubectl port-forward). Data goes to -w FILE or stdout
// (-w -); a one-line summary goes to stderr. SIGINT/SIGTERM end the capture with a valid file.
import { createWriteStream, type WriteStream } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type CompiledFilter, compileFilter, FilterError } from '../capture/pcap-filter.ts';
import { BlockAligner } from '../capture/pcapng.ts';
import { type CaptureResult, CaptureSession, DEFAULT_SNAPLEN, MAX_SNAPLEN } from '../capture/session.ts';
import { resolveTarget, TargetError, type TargetSpec } from '../capture/target.ts';
import { parseBytesArg, parseDurationArg } from '../capture/units.ts';
import { parseUrl, remoteGet } from './remote.ts';

interface CaptureOpts {
  pod?: string;
  netns?: string;
  host?: boolean;
  filter: string;
  snaplen?: number;
  count?: number;
  duration?: number;
  maxBytes?: number;
  write: string;
  url?: string;
  tokenFile?: string;
  criEndpoint?: string;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`podnet capture: ${message}\n`);
  process.exit(code);
}

const positiveInt = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer ${what}`);
  return n;
};

function targetOf(o: CaptureOpts): TargetSpec {
  const given = [o.pod !== undefined, o.netns !== undefined, o.host === true].filter(Boolean).length;
  if (given !== 1) fail('give exactly one of --pod NS/NAME, --netns NAME, --host', 2);
  if (o.pod !== undefined) return { kind: 'pod', ref: o.pod };
  if (o.netns !== undefined) return { kind: 'netns', name: o.netns };
  return { kind: 'host' };
}

/** Where the pcapng goes: a file (0600: it may hold traffic) or stdout. */
function output(path: string): { stream: NodeJS.WritableStream; end: () => Promise<void> } {
  if (path === '-') {
    const out = process.stdout;
    return {
      stream: out,
      end: () => new Promise((r) => (out.writableNeedDrain ? out.once('drain', () => r()) : r())),
    };
  }
  const ws: WriteStream = createWriteStream(path, { mode: 0o600 });
  ws.on('error', (err) => fail(`cannot write ${path}: ${err.message}`));
  return { stream: ws, end: () => new Promise((r) => ws.end(() => r())) };
}

function summary(r: CaptureResult): string {
  const ifs = r.interfaces.length ? ` on ${r.interfaces.join(', ')}` : '';
  return `${r.packets} packets captured${ifs} (${r.bytes} bytes of pcapng), ${r.kernelPackets} received by the filter, ${r.kernelDrops} dropped by the kernel; stopped: ${r.reason}${r.error ? ` (${r.error})` : ''}\n`;
}

async function captureLocal(o: CaptureOpts, spec: TargetSpec, filter: CompiledFilter): Promise<void> {
  let source = { entities: () => [], pods: () => [] } as Parameters<typeof resolveTarget>[1];
  let registry: { stop(): void } | undefined;
  if (spec.kind === 'pod') {
    const { EntityRegistry } = await import('../pods/registry.ts');
    const r = new EntityRegistry({
      netnsDiscovery: 'never',
      ...(o.criEndpoint ? { criEndpoint: o.criEndpoint } : {}),
    });
    await r.start();
    registry = r;
    source = r;
  }
  let target: ReturnType<typeof resolveTarget>;
  try {
    target = resolveTarget(spec, source);
  } catch (err) {
    if (err instanceof TargetError) fail(err.message, 1);
    throw err;
  } finally {
    registry?.stop();
  }
  const out = output(o.write);
  let session: CaptureSession;
  try {
    session = new CaptureSession({
      netnsPath: target.netnsPath,
      filter,
      snaplen: o.snaplen,
      count: o.count,
      durationMs: o.duration,
      maxBytes: o.maxBytes,
      comment: `${target.description}${o.filter ? `, filter: ${o.filter}` : ''}`,
      write: (b) => out.stream.write(b),
      onDrain: (fn) => out.stream.once('drain', fn),
    });
  } catch (err) {
    fail((err as Error).message);
  }
  // tcpdump's "listening on" line: from here on the socket receives (scripts wait for it)
  process.stderr.write(
    `podnet capture: listening in ${target.description} (${target.netnsPath}), ${o.snaplen === undefined ? 'headers only' : `snaplen ${o.snaplen}`}${o.filter ? `, filter "${o.filter}"` : ''}\n`,
  );
  const stop = () => void session.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result = await session.done;
  await out.end();
  process.stderr.write(summary(result));
  process.exit(result.reason === 'error' ? 1 : 0);
}

async function captureRemote(o: CaptureOpts, spec: TargetSpec, url: string): Promise<void> {
  const q = new URLSearchParams();
  if (spec.kind === 'pod') q.set('pod', spec.ref);
  else if (spec.kind === 'netns') q.set('netns', spec.name);
  else q.set('host', '1');
  if (o.filter) q.set('filter', o.filter);
  if (o.snaplen !== undefined) q.set('snaplen', String(o.snaplen));
  if (o.count !== undefined) q.set('count', String(o.count));
  if (o.duration !== undefined) q.set('duration', `${o.duration}ms`);
  if (o.maxBytes !== undefined) q.set('max_bytes', String(o.maxBytes));
  const abort = new AbortController();
  let interrupted = false;
  const stop = () => {
    interrupted = true;
    abort.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let res: Response;
  try {
    res = await remoteGet({ url, tokenFile: o.tokenFile }, `/capture?${q}`, { signal: abort.signal });
  } catch (err) {
    fail((err as Error).message);
  }
  if (!res.body) fail(`${url}/capture answered without a body`);
  for (const h of ['duration-ms', 'max-bytes']) {
    const v = res.headers.get(`podnet-capture-${h}`);
    if (v) process.stderr.write(`podnet capture: server limit ${h}=${v}\n`);
  }
  const out = output(o.write);
  const aligner = new BlockAligner();
  let bytes = 0;
  try {
    for await (const chunk of res.body) {
      const whole = aligner.push(Buffer.from(chunk));
      bytes += whole.length;
      if (whole.length && !out.stream.write(whole)) await new Promise((r) => out.stream.once('drain', r));
    }
  } catch (err) {
    if (!interrupted) process.stderr.write(`podnet capture: stream ended: ${(err as Error).message}\n`);
  }
  await out.end();
  process.stderr.write(
    `${bytes} bytes of pcapng from ${url}${interrupted ? ' (interrupted)' : ''}${aligner.pending ? ` (${aligner.pending} bytes of a cut block left out)` : ''}\n`,
  );
  process.exit(0);
}

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description(
      "pcapng of one pod's, netns' or the host's traffic (tcpdump filter syntax), here or on a remote podnet (--url)",
    )
    .option('--pod <ns/name>', 'a pod on this node (namespace/name, uid, or a unique name)')
    .option('--netns <name>', 'a named network namespace (/run/netns/NAME)')
    .option('--host', "the node's own network namespace")
    .option(
      '--filter <expr>',
      'tcpdump-syntax filter from the IP header on (libpcap), e.g. "udp port 53"',
      '',
    )
    .option(
      '--snaplen <bytes>',
      'bytes kept per packet from the IP header, payload included (default: the IP and transport headers only, no payload)',
      (v) => {
        const n = positiveInt('number of bytes')(v);
        if (n > MAX_SNAPLEN) throw new InvalidArgumentError(`at most ${MAX_SNAPLEN}`);
        return n;
      },
    )
    .option('-c, --count <n>', 'stop after n packets', positiveInt('number of packets'))
    .option('--duration <d>', 'stop after this long (10s, 500ms, 2m; bare number = seconds)', (v) => {
      const ms = parseDurationArg(v);
      if (ms === undefined || ms <= 0) throw new InvalidArgumentError('expected a duration such as 10s');
      return ms;
    })
    .option('--max-bytes <size>', 'stop before the file grows past this size (1000, 64k, 10M)', (v) => {
      const n = parseBytesArg(v);
      if (n === undefined || n < 1) throw new InvalidArgumentError('expected a size such as 10M');
      return n;
    })
    .requiredOption('-w, --write <file>', 'pcapng output file, or - for stdout')
    .option('--url <url>', 'capture on the podnet server at this URL instead of locally', parseUrl)
    .addOption(
      new Option('--token-file <file>', "file with the server's bearer token (with --url)").env(
        'PODNET_TOKEN_FILE',
      ),
    )
    .option(
      '--cri-endpoint <endpoint>',
      'CRI socket to find pods (default: CONTAINER_RUNTIME_ENDPOINT, then the usual sockets)',
    )
    .action(async (o: CaptureOpts) => {
      const spec = targetOf(o);
      if (o.write === '-' && process.stdout.isTTY)
        fail('refusing to write pcapng to a terminal; use -w FILE or a pipe', 2);
      if (o.url) return captureRemote(o, spec, o.url);
      let filter: CompiledFilter;
      try {
        filter = compileFilter(o.filter, o.snaplen ?? DEFAULT_SNAPLEN); // a bad filter fails before anything else
      } catch (err) {
        if (err instanceof FilterError) fail(err.message, 2);
        throw err;
      }
      return captureLocal(o, spec, filter);
    });
}
