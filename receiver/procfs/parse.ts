// Parsers for the procfs files the procfs probes read: net/dev, net/snmp, net/netstat, net/snmp6,
// net/sockstat(6), net/softnet_stat and /proc/<pid>/io. They scan the text once, allocate little (header
// lines of snmp/netstat are parsed once and cached), and throw `ProcfsParseError` on anything malformed
// (truncated file, garbage token, header/value mismatch): a bad file is an error for that read, never a
// crash and never a silently wrong number.
//
// Values are JS numbers: exact up to 2^53 (9 PB of bytes, 9e15 packets), which kernel counters of a
// running node do not reach.

export class ProcfsParseError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ProcfsParseError';
    this.file = file;
  }
}

const SPACE = 32;
const TAB = 9;
const MINUS = 45;
const ZERO = 48;
const NINE = 57;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

/**
 * Parses the whitespace-separated decimal integers of `text[start, end)` into `out` (appended).
 * Throws on any token that is not an optionally negative decimal integer.
 */
function parseIntsInto(file: string, text: string, start: number, end: number, out: number[]): void {
  let i = start;
  while (i < end) {
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (i >= end) break;
    let neg = false;
    if (text.charCodeAt(i) === MINUS) {
      neg = true;
      i++;
    }
    const digitsStart = i;
    let v = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < ZERO || c > NINE) break;
      v = v * 10 + (c - ZERO);
      i++;
    }
    if (i === digitsStart || (i < end && !isBlank(text.charCodeAt(i)))) {
      throw new ProcfsParseError(
        file,
        `bad number near ${JSON.stringify(text.slice(digitsStart, digitsStart + 20))}`,
      );
    }
    out.push(neg ? -v : v);
  }
}

function lineEnd(text: string, from: number): number {
  const e = text.indexOf('\n', from);
  return e < 0 ? text.length : e;
}

// ---------------------------------------------------------------------------------------------------
// net/snmp, net/netstat: pairs of lines `Group: Name1 Name2 ...` / `Group: v1 v2 ...`.

export interface SnmpGroup {
  /** Kernel group name without the colon: `Ip`, `Tcp`, `TcpExt`, `IcmpMsg`, ... */
  readonly group: string;
  /** Field names as the kernel prints them (`InReceives`), shared between parses (do not mutate). */
  readonly fields: readonly string[];
  readonly values: number[];
}

interface CachedHeader {
  /** The whole header line, without the newline. */
  readonly line: string;
  readonly group: string;
  readonly fields: readonly string[];
}
/** Headers seen, by group name: the next file's header is matched in place, without a copy. */
const headerCache = new Map<string, CachedHeader[]>();

function parseHeader(file: string, text: string, pos: number, end: number): CachedHeader {
  const colon = text.indexOf(':', pos);
  if (colon <= pos || colon > end) {
    throw new ProcfsParseError(
      file,
      `header without group: ${JSON.stringify(text.slice(pos, Math.min(end, pos + 40)))}`,
    );
  }
  const group = text.slice(pos, colon);
  const known = headerCache.get(group);
  if (known) {
    for (const h of known) if (h.line.length === end - pos && text.startsWith(h.line, pos)) return h;
  }
  const line = text.slice(pos, end);
  const fields = line
    .slice(colon - pos + 1)
    .split(' ')
    .filter((f) => f.length > 0);
  for (const f of fields) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f))
      throw new ProcfsParseError(file, `bad field name ${JSON.stringify(f)}`);
  }
  const h = { line, group, fields };
  if (headerCache.size < 64 && (known?.length ?? 0) < 4) {
    if (known) known.push(h);
    else headerCache.set(group, [h]);
  }
  return h;
}

/**
 * `/proc/<pid>/net/snmp` and `/proc/<pid>/net/netstat`. Groups for which `skip(group, fields)` is true
 * are checked for structure (header, value line prefix) but their values are not parsed nor returned.
 */
export function parseSnmp(
  text: string,
  file = 'net/snmp',
  skip?: (group: string, fields: readonly string[]) => boolean,
): SnmpGroup[] {
  let pairs = 0;
  const groups: SnmpGroup[] = [];
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    const hEnd = lineEnd(text, pos);
    if (hEnd === pos) {
      pos++;
      continue; // blank line
    }
    const header = parseHeader(file, text, pos, hEnd);
    if (hEnd + 1 >= n)
      throw new ProcfsParseError(file, `group ${header.group}: value line missing (truncated)`);
    const vStart = hEnd + 1;
    const vEnd = lineEnd(text, vStart);
    const prefix = `${header.group}:`;
    if (!text.startsWith(prefix, vStart)) {
      throw new ProcfsParseError(file, `group ${header.group}: value line does not start with ${prefix}`);
    }
    pairs++;
    if (skip?.(header.group, header.fields)) {
      pos = vEnd + 1;
      continue;
    }
    const values: number[] = [];
    parseIntsInto(file, text, vStart + prefix.length, vEnd, values);
    if (values.length !== header.fields.length) {
      throw new ProcfsParseError(
        file,
        `group ${header.group}: ${header.fields.length} fields but ${values.length} values (truncated?)`,
      );
    }
    groups.push({ group: header.group, fields: header.fields, values });
    pos = vEnd + 1;
  }
  if (pairs === 0) throw new ProcfsParseError(file, 'empty');
  return groups;
}

// ---------------------------------------------------------------------------------------------------
// net/snmp6: `Name<blanks>value` per line.

export interface NameValues {
  readonly names: string[];
  readonly values: number[];
}

// The previous file's names: the next file (another netns, same kernel) is matched in place, so names
// are neither copied nor re-hashed when the layout is the same.
let lastNames: string[] = [];

/**
 * `/proc/<pid>/net/snmp6` (and any `name value` per-line file). `names` may be shared with the previous
 * call (same layout): treat it as read-only.
 */
export function parseNameValueLines(text: string, file = 'net/snmp6'): NameValues {
  let names: string[] = lastNames;
  let shared = true;
  const values: number[] = [];
  let pos = 0;
  let line = 0;
  const n = text.length;
  while (pos < n) {
    const end = lineEnd(text, pos);
    if (end === pos) {
      pos++;
      continue;
    }
    let i = pos;
    const cached = shared ? lastNames[line] : undefined;
    if (
      cached !== undefined &&
      text.startsWith(cached, pos) &&
      isBlank(text.charCodeAt(pos + cached.length))
    ) {
      i = pos + cached.length;
    } else {
      while (i < end && !isBlank(text.charCodeAt(i))) i++;
      if (i === end)
        throw new ProcfsParseError(file, `line without value: ${JSON.stringify(text.slice(pos, end))}`);
      if (shared) {
        names = lastNames.slice(0, line);
        shared = false;
      }
    }
    const before = values.length;
    parseIntsInto(file, text, i, end, values);
    if (values.length !== before + 1) {
      throw new ProcfsParseError(file, `expected one value on line ${JSON.stringify(text.slice(pos, end))}`);
    }
    if (!shared) names.push(text.slice(pos, i));
    line++;
    pos = end + 1;
  }
  if (line === 0) throw new ProcfsParseError(file, 'empty');
  if (shared && line !== lastNames.length) names = lastNames.slice(0, line);
  else if (!shared) lastNames = names;
  return { names, values };
}

// ---------------------------------------------------------------------------------------------------
// net/dev

/** Column order of one `/proc/net/dev` row (8 receive then 8 transmit columns). */
export const NETDEV_COLUMNS = [
  'rx_bytes',
  'rx_packets',
  'rx_errs',
  'rx_drop',
  'rx_fifo',
  'rx_frame',
  'rx_compressed',
  'rx_multicast',
  'tx_bytes',
  'tx_packets',
  'tx_errs',
  'tx_drop',
  'tx_fifo',
  'tx_colls',
  'tx_carrier',
  'tx_compressed',
] as const;

export interface NetDevRow {
  readonly name: string;
  /** 16 values in `NETDEV_COLUMNS` order. */
  readonly values: number[];
}

/** `/proc/<pid>/net/dev`: two header lines, then `name: 16 numbers` per interface. */
export function parseNetDev(text: string, file = 'net/dev'): NetDevRow[] {
  const rows: NetDevRow[] = [];
  let pos = 0;
  const n = text.length;
  let line = 0;
  while (pos < n) {
    const end = lineEnd(text, pos);
    if (line < 2) {
      // Header lines: `Inter-|   Receive ...` and ` face |bytes ...`.
      if (text.indexOf('|', pos) < 0 || text.indexOf('|', pos) > end) {
        throw new ProcfsParseError(file, 'missing header');
      }
    } else if (end > pos) {
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon > end)
        throw new ProcfsParseError(file, `row without interface name (line ${line + 1})`);
      let s = pos;
      while (s < colon && isBlank(text.charCodeAt(s))) s++;
      const name = text.slice(s, colon);
      if (name.length === 0) throw new ProcfsParseError(file, `empty interface name (line ${line + 1})`);
      const values: number[] = [];
      parseIntsInto(file, text, colon + 1, end, values);
      if (values.length !== 16) {
        throw new ProcfsParseError(
          file,
          `interface ${name}: ${values.length} columns instead of 16 (truncated?)`,
        );
      }
      rows.push({ name, values });
    }
    line++;
    pos = end + 1;
  }
  if (line < 2) throw new ProcfsParseError(file, 'missing header (truncated)');
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// net/sockstat, net/sockstat6: `PROTO: key value key value ...`

export interface SockstatEntry {
  /** `sockets`, `TCP`, `UDP`, `UDPLITE`, `RAW`, `FRAG`, `TCP6`, ... */
  readonly proto: string;
  /** `used`, `inuse`, `orphan`, `tw`, `alloc`, `mem`, `memory`. */
  readonly key: string;
  readonly value: number;
}

export function parseSockstat(
  text: string,
  file = 'net/sockstat',
  out: SockstatEntry[] = [],
): SockstatEntry[] {
  const start = out.length;
  const one: number[] = [];
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    const end = lineEnd(text, pos);
    if (end === pos) {
      pos++;
      continue;
    }
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon > end) {
      throw new ProcfsParseError(file, `line without protocol: ${JSON.stringify(text.slice(pos, end))}`);
    }
    const proto = text.slice(pos, colon);
    let i = colon + 1;
    let pairs = 0;
    for (;;) {
      while (i < end && isBlank(text.charCodeAt(i))) i++;
      if (i >= end) break;
      const k0 = i;
      while (i < end) {
        const c = text.charCodeAt(i);
        if (!((c >= 97 && c <= 122) || c === 95)) break; // a-z, _
        i++;
      }
      if (i === k0 || i >= end || !isBlank(text.charCodeAt(i))) {
        throw new ProcfsParseError(file, `${proto}: bad key near ${JSON.stringify(text.slice(k0, k0 + 20))}`);
      }
      const key = text.slice(k0, i);
      while (i < end && isBlank(text.charCodeAt(i))) i++;
      const v0 = i;
      while (i < end && !isBlank(text.charCodeAt(i))) i++;
      if (v0 === i) throw new ProcfsParseError(file, `${proto}: ${key} without value (truncated?)`);
      one.length = 0;
      parseIntsInto(file, text, v0, i, one);
      out.push({ proto, key, value: one[0]! });
      pairs++;
    }
    if (pairs === 0) throw new ProcfsParseError(file, `${proto}: no values (truncated?)`);
    pos = end + 1;
  }
  if (out.length === start) throw new ProcfsParseError(file, 'empty');
  return out;
}

// ---------------------------------------------------------------------------------------------------
// net/softnet_stat: one row per online CPU, hex u32 columns.

export interface SoftnetRow {
  /** CPU number (column 13 on kernels ≥ 5.10, else the row index). */
  readonly cpu: number;
  readonly processed: number;
  readonly dropped: number;
  readonly timeSqueeze: number;
  /** `received_rps` (column 10), 0 when the kernel does not print it. */
  readonly receivedRps: number;
  /** `flow_limit_count` (column 11), 0 when absent. */
  readonly flowLimitCount: number;
  /** input + process queue length (column 12), 0 when absent. */
  readonly backlogLen: number;
}

function hexValue(file: string, tok: string): number {
  if (!/^[0-9a-fA-F]{1,16}$/.test(tok))
    throw new ProcfsParseError(file, `bad hex column ${JSON.stringify(tok)}`);
  return Number.parseInt(tok, 16);
}

export function parseSoftnet(text: string, file = 'net/softnet_stat'): SoftnetRow[] {
  const rows: SoftnetRow[] = [];
  let pos = 0;
  const n = text.length;
  let index = 0;
  while (pos < n) {
    const end = lineEnd(text, pos);
    if (end > pos) {
      const cols = text
        .slice(pos, end)
        .split(' ')
        .filter((t) => t.length > 0);
      if (cols.length < 3)
        throw new ProcfsParseError(file, `row ${index}: ${cols.length} columns (truncated?)`);
      const v = cols.map((c) => hexValue(file, c));
      rows.push({
        cpu: v.length >= 13 ? v[12]! : index,
        processed: v[0]!,
        dropped: v[1]!,
        timeSqueeze: v[2]!,
        receivedRps: v[9] ?? 0,
        flowLimitCount: v[10] ?? 0,
        backlogLen: v[11] ?? 0,
      });
      index++;
    }
    pos = end + 1;
  }
  if (rows.length === 0) throw new ProcfsParseError(file, 'empty');
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// /proc/<pid>/io

export interface PidIo {
  readonly rchar: number;
  readonly wchar: number;
  readonly syscr: number;
  readonly syscw: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  readonly cancelledWriteBytes: number;
}

const IO_KEYS: Record<string, keyof PidIo> = {
  rchar: 'rchar',
  wchar: 'wchar',
  syscr: 'syscr',
  syscw: 'syscw',
  read_bytes: 'readBytes',
  write_bytes: 'writeBytes',
  cancelled_write_bytes: 'cancelledWriteBytes',
};

export function parsePidIo(text: string, file = 'io'): PidIo {
  const v: Record<keyof PidIo, number> = {
    rchar: -1,
    wchar: -1,
    syscr: -1,
    syscw: -1,
    readBytes: -1,
    writeBytes: -1,
    cancelledWriteBytes: -1,
  };
  let pos = 0;
  const n = text.length;
  const one: number[] = [];
  while (pos < n) {
    const end = lineEnd(text, pos);
    if (end > pos) {
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon > end)
        throw new ProcfsParseError(file, `bad line ${JSON.stringify(text.slice(pos, end))}`);
      const key = IO_KEYS[text.slice(pos, colon)];
      one.length = 0;
      parseIntsInto(file, text, colon + 1, end, one);
      if (one.length !== 1)
        throw new ProcfsParseError(file, `bad value on ${JSON.stringify(text.slice(pos, end))}`);
      if (key) v[key] = one[0]!;
    }
    pos = end + 1;
  }
  for (const [k, val] of Object.entries(v)) {
    if (val < 0) throw new ProcfsParseError(file, `missing ${k} (truncated?)`);
  }
  return v;
}
