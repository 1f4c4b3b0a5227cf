// `podnet inspect`: a live terminal view (ink) of a running podnet, fed by its GET /inspect JSON.
// Entities with their key metrics (counters as a rate per second between two refreshes, gauges as the
// level, histograms as observations per second), sortable by a key press, probe states, recent events.
import { Box, render, Text, useApp, useInput, useStdout } from 'ink';
import React from 'react';
import { type RemoteOptions, remoteGet } from './remote.ts';

interface InspectEntity {
  name: string;
  kind: string;
  netnsInode: number;
  totals: Record<string, number>;
}

interface InspectEvent {
  time: string;
  name: string;
  type: string;
  entity: string;
  /** The other end of the tuple (receiver/peers), when the event has one. */
  peer?: string;
  attributes: Record<string, unknown>;
}

export interface InspectData {
  time: string;
  collectionIntervalMs: number;
  metrics: Record<string, { kind: string; unit: string }>;
  entities: InspectEntity[];
  probes: Array<{ name: string; state: string; reason?: string }>;
  events: Record<string, number>;
  recentEvents: InspectEvent[];
}

const PREFERRED = [
  'k8s.pod.network.io/receive',
  'k8s.pod.network.io/transmit',
  'podnet.kernel.drop.count',
  'podnet.tcp.reset.count',
  'podnet.tcp.retransmit.count',
];
const MAX_COLUMNS = 5;
const EVENT_LINES = 8;

export interface Row {
  name: string;
  kind: string;
  values: Array<number | undefined>;
}

/** Columns to show: the preferred key metrics present, then the rest by name. */
export function chooseColumns(data: InspectData): string[] {
  const present = new Set<string>();
  for (const e of data.entities) for (const k of Object.keys(e.totals)) present.add(k);
  const cols = PREFERRED.filter((k) => present.has(k));
  for (const k of [...present].sort()) if (!cols.includes(k) && cols.length < MAX_COLUMNS) cols.push(k);
  return cols.slice(0, MAX_COLUMNS);
}

function kindOf(data: InspectData, col: string): string {
  return data.metrics[col.split('/')[0]!]?.kind ?? 'counter';
}

/** Rows with counters turned into per-second rates against the previous sample. */
export function buildRows(data: InspectData, prev: InspectData | undefined, cols: readonly string[]): Row[] {
  const dt = prev ? (Date.parse(data.time) - Date.parse(prev.time)) / 1000 : 0;
  const prevBy = new Map(prev?.entities.map((e) => [`${e.kind}:${e.netnsInode}`, e]) ?? []);
  return data.entities.map((e) => {
    const p = prevBy.get(`${e.kind}:${e.netnsInode}`);
    return {
      name: e.name,
      kind: e.kind,
      values: cols.map((c) => {
        const v = e.totals[c];
        if (v === undefined) return undefined;
        if (kindOf(data, c) === 'gauge' || kindOf(data, c) === 'updowncounter') return v;
        const pv = p?.totals[c];
        if (pv === undefined || dt <= 0) return undefined;
        return Math.max(0, (v - pv) / dt);
      }),
    };
  });
}

export function sortRows(rows: Row[], sortCol: number, desc: boolean): Row[] {
  const out = [...rows];
  out.sort((a, b) => {
    const r =
      sortCol < 0
        ? a.name.localeCompare(b.name)
        : (a.values[sortCol] ?? Number.NEGATIVE_INFINITY) - (b.values[sortCol] ?? Number.NEGATIVE_INFINITY);
    return desc ? -r : r;
  });
  return out;
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '-';
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
}

function header(data: InspectData, col: string): string {
  const kind = kindOf(data, col);
  const suffix = kind === 'gauge' || kind === 'updowncounter' ? '' : '/s';
  let name = col.replace(/^podnet\./, '').replace(/^k8s\.pod\./, '');
  while (name.length + suffix.length > COL_W - 4 && name.includes('.'))
    name = name.slice(name.indexOf('.') + 1);
  return `${name}${suffix}`;
}

/** Probes that are not stopped, with their state; stopped ones only counted. */
export function probesLine(data: InspectData): string {
  const active = data.probes.filter((p) => p.state !== 'stopped');
  const stopped = data.probes.length - active.length;
  const list = active.map((p) => `${p.name}=${p.state}`).join(' ') || '(none running)';
  return `probes: ${list}${stopped > 0 ? ` (${stopped} stopped)` : ''}`;
}

const h = React.createElement;
const NAME_W = 30;
const COL_W = 26;

function cell(s: string, w: number, right = false): string {
  const t = s.length > w - 1 ? `${s.slice(0, w - 2)}…` : s;
  return right ? t.padStart(w - 1).padEnd(w) : t.padEnd(w);
}

function App(props: { remote: RemoteOptions; intervalMs: number }): React.ReactElement {
  const url = props.remote.url;
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [data, setData] = React.useState<InspectData | undefined>(undefined);
  const [prev, setPrev] = React.useState<InspectData | undefined>(undefined);
  const [error, setError] = React.useState<string | undefined>(undefined);
  const [sortCol, setSortCol] = React.useState(-1);
  const [desc, setDesc] = React.useState(false);

  React.useEffect(() => {
    let stopped = false;
    let last: InspectData | undefined;
    const poll = async () => {
      try {
        const d = (await (await remoteGet(props.remote, '/inspect')).json()) as InspectData;
        if (stopped) return;
        setPrev(last);
        setData(d);
        last = d;
        setError(undefined);
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
    };
    void poll();
    const t = setInterval(() => void poll(), props.intervalMs);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, [props.remote, props.intervalMs]);

  useInput((input) => {
    if (input === 'q') exit();
    else if (input === 'n') {
      setSortCol(-1);
      setDesc(false);
    } else if (input === 'r') setDesc((d) => !d);
    else if (/^[1-9]$/.test(input)) {
      setSortCol(Number(input) - 1);
      setDesc(true);
    }
  });

  const title = h(Text, { bold: true }, `podnet inspect  ${url}`);
  if (!data)
    return h(Box, { flexDirection: 'column' }, title, h(Text, { color: 'yellow' }, error ?? 'connecting...'));
  const cols = chooseColumns(data);
  const col = sortCol < cols.length ? sortCol : -1;
  const rows = sortRows(buildRows(data, prev, cols), col, desc);
  const sortName = col < 0 ? 'name' : header(data, cols[col]!);
  // Fit the terminal: header (5 lines), the table, a "more" line, the events block (2 + EVENT_LINES).
  const maxRows = Math.max(3, (stdout.rows || 40) - 5 - 1 - (2 + EVENT_LINES) - 1);
  const shown = rows.slice(0, maxRows);
  const hidden = rows.length - shown.length;
  const headLine =
    cell('ENTITY', NAME_W) +
    cell('KIND', 12) +
    cols.map((c, i) => cell(`${i + 1}:${header(data, c)}`, COL_W, true)).join('');
  const ev = data.events;
  return h(
    Box,
    { flexDirection: 'column' },
    title,
    h(
      Text,
      { dimColor: true },
      `${rows.length} entities · sort: ${sortName} ${desc ? '↓' : '↑'} · keys: 1-${cols.length || 1} sort by column, n name, r reverse, q quit`,
    ),
    h(Text, null, probesLine(data)),
    h(
      Text,
      null,
      `events: emitted ${ev['emitted'] ?? 0} · sent ${ev['sent'] ?? 0} · suppressed ${ev['suppressed'] ?? 0} · lost ${(ev['lost_queue_full'] ?? 0) + (ev['lost_export_failed'] ?? 0)}`,
    ),
    error ? h(Text, { color: 'red' }, error) : null,
    h(Text, { bold: true, inverse: true }, headLine),
    ...shown.map((r) =>
      h(
        Text,
        { key: `${r.kind}:${r.name}` },
        cell(r.name, NAME_W) + cell(r.kind, 12) + r.values.map((v) => cell(fmt(v), COL_W, true)).join(''),
      ),
    ),
    hidden > 0 ? h(Text, { dimColor: true }, `… ${hidden} more (press a column key to sort)`) : null,
    h(Text, { bold: true }, ' '),
    h(Text, { bold: true }, 'RECENT EVENTS'),
    ...data.recentEvents
      .slice(-EVENT_LINES)
      .reverse()
      .map((e, i) =>
        h(
          Text,
          { key: `ev${i}` },
          `${e.time.slice(11, 23)}  ${cell(e.entity, 22)}${cell(e.name, 28)}${cell(e.type, 20)}${cell(e.peer ? `↔ ${e.peer}` : '', 34)}${String(e.attributes['error.type'] ?? '')}`,
        ),
      ),
    data.recentEvents.length === 0 ? h(Text, { dimColor: true }, '(no events yet)') : null,
  );
}

export async function runInspect(remote: RemoteOptions, intervalMs: number): Promise<void> {
  if (!process.stdin.isTTY) {
    process.stderr.write('podnet inspect needs a terminal (stdin is not a TTY)\n');
    process.exit(2);
  }
  // A live view on a terminal even where CI is set (Ink would otherwise print only the last frame on exit).
  const app = render(h(App, { remote, intervalMs }), { interactive: Boolean(process.stdout.isTTY) });
  await app.waitUntilExit();
}
