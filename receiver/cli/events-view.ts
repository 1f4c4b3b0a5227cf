// `podnet events -o table|wide`: the JSON lines of /events as a kubectl-style table, printed as the
// events arrive (column widths are fixed, so a streamed table stays aligned; long cells are cut with `…`).
//
//   table: TIME  ENTITY  EVENT  TYPE  DETAIL
//   wide:  TIME  SEVERITY  PROBE  ENTITY  EVENT  TYPE  PEER  DETAIL  (+ the top kernel stack frame)
//
// DETAIL is the record's one-line body when the agent sends one, else a summary built from the standard
// attributes (transport, local -> peer address:port, error.type).

export type OutputFormat = 'json' | 'table' | 'wide';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['json', 'table', 'wide'];

/** The fields of an /events JSON line this view reads (receiver/otel/event-pipeline.ts EventRecord). */
export interface EventLine {
  readonly time?: string;
  readonly name?: string;
  readonly type?: string;
  readonly severity?: string;
  readonly probe?: string;
  readonly entity?: string;
  /** The other end as the agent resolved it (`pod ns/name`, `service ns/name`, `host`, ...). */
  readonly peer?: string;
  readonly body?: string;
  readonly attributes?: Readonly<Record<string, unknown>>;
  readonly stack?: readonly string[];
}

interface Column {
  readonly title: string;
  readonly width: number;
  readonly cell: (e: EventLine) => string;
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function endpoint(addr: unknown, port: unknown): string {
  const a = str(addr);
  if (!a) return '';
  const host = a.includes(':') ? `[${a}]` : a;
  return port === undefined ? host : `${host}:${str(port)}`;
}

/** A one-line summary from the attributes every tuple event carries. */
export function summary(e: EventLine): string {
  if (e.body) return e.body;
  const a = e.attributes ?? {};
  const local = endpoint(
    a['network.local.address'] ?? a['source.address'],
    a['network.local.port'] ?? a['source.port'],
  );
  const peer = endpoint(
    a['network.peer.address'] ?? a['destination.address'],
    a['network.peer.port'] ?? a['destination.port'],
  );
  const parts = [str(a['network.transport'])];
  if (local || peer) parts.push(`${local || '?'} -> ${peer || '?'}`);
  if (a['error.type'] !== undefined) parts.push(str(a['error.type']));
  return parts.filter(Boolean).join(' ');
}

/** The record's own `peer` (receiver/peers display text); from the peer keys for agents without it. */
export function peerColumn(e: EventLine): string {
  if (e.peer) return e.peer;
  const a = e.attributes ?? {};
  const ns = str(a['podnet.peer.k8s.namespace.name']);
  const name = str(
    a['podnet.peer.k8s.pod.name'] ?? a['podnet.peer.k8s.service.name'] ?? a['podnet.peer.k8s.node.name'],
  );
  if (name) return ns ? `${ns}/${name}` : name;
  return str(a['podnet.peer.kind']);
}

function clock(time: string | undefined): string {
  // ISO 8601 → HH:MM:SS.mmm (local time zone of the operator, as kubectl shows ages)
  const d = time ? new Date(time) : undefined;
  if (!d || Number.isNaN(d.getTime())) return '';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const shortName = (n: string | undefined) => str(n).replace(/^podnet\./, '');

const COLUMNS: Record<'table' | 'wide', readonly Column[]> = {
  table: [
    { title: 'TIME', width: 12, cell: (e) => clock(e.time) },
    { title: 'ENTITY', width: 28, cell: (e) => str(e.entity) },
    { title: 'EVENT', width: 18, cell: (e) => shortName(e.name) },
    { title: 'TYPE', width: 22, cell: (e) => str(e.type) },
    { title: 'DETAIL', width: 0, cell: summary },
  ],
  wide: [
    { title: 'TIME', width: 12, cell: (e) => clock(e.time) },
    { title: 'SEVERITY', width: 8, cell: (e) => str(e.severity) },
    { title: 'PROBE', width: 12, cell: (e) => str(e.probe) },
    { title: 'ENTITY', width: 36, cell: (e) => str(e.entity) },
    { title: 'EVENT', width: 18, cell: (e) => shortName(e.name) },
    { title: 'TYPE', width: 22, cell: (e) => str(e.type) },
    { title: 'PEER', width: 28, cell: peerColumn },
    { title: 'DETAIL', width: 0, cell: (e) => [summary(e), e.stack?.[0]].filter(Boolean).join('  at ') },
  ],
};

function fit(text: string, width: number): string {
  if (width === 0) return text;
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

function row(cols: readonly Column[], cells: readonly string[]): string {
  return `${cols
    .map((c, i) => fit(cells[i]!, c.width))
    .join('  ')
    .trimEnd()}\n`;
}

export function header(format: 'table' | 'wide'): string {
  const cols = COLUMNS[format];
  return row(
    cols,
    cols.map((c) => c.title),
  );
}

export function formatEvent(e: EventLine, format: 'table' | 'wide'): string {
  const cols = COLUMNS[format];
  return row(
    cols,
    cols.map((c) => c.cell(e)),
  );
}

/**
 * Turns a stream of JSON-lines chunks into output lines of the format. Partial lines are kept until their
 * newline arrives; a line that is not JSON is passed through as is (so nothing the server says is lost).
 */
export class EventsPrinter {
  readonly #format: OutputFormat;
  readonly #write: (s: string) => void;
  #rest = '';
  #headed = false;

  constructor(format: OutputFormat, write: (s: string) => void) {
    this.#format = format;
    this.#write = write;
  }

  push(chunk: string): void {
    if (this.#format === 'json') {
      this.#write(chunk);
      return;
    }
    const text = this.#rest + chunk;
    const lines = text.split('\n');
    this.#rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) this.#line(l);
  }

  end(): void {
    if (this.#format !== 'json' && this.#rest.trim()) this.#line(this.#rest);
    this.#rest = '';
    if (this.#format !== 'json' && !this.#headed) this.#write(header(this.#format));
  }

  #line(l: string): void {
    const format = this.#format as 'table' | 'wide';
    if (!this.#headed) {
      this.#write(header(format));
      this.#headed = true;
    }
    let e: EventLine;
    try {
      e = JSON.parse(l) as EventLine;
    } catch {
      this.#write(`${l}\n`);
      return;
    }
    this.#write(formatEvent(e, format));
  }
}
