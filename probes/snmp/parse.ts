// Parsers of the files the snmp probe reads: net/snmp and net/netstat (pairs of header/value lines,
// headers parsed once and cached) and net/snmp6 (`Name value` lines).
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import {
  bytesEqualAt,
  isBlank,
  lineEnd,
  lineEndAt,
  ProcfsParseError,
  parseIntsAt,
  parseIntsInto,
} from '../../receiver/procfs/parse.ts';

// net/snmp, net/netstat: pairs of lines `Group: Name1 Name2 ...` / `Group: v1 v2 ...`.

export interface SnmpGroup {
  /** Kernel group name without the colon: `Ip`, `Tcp`, `TcpExt`, `IcmpMsg`, ... */
  readonly group: string;
  /** Field names as the kernel prints them (`InReceives`), shared between parses (do not mutate). */
  readonly fields: readonly string[];
  readonly values: number[];
}

interface CachedHeader {
  /** The whole header line, without the newline (latin1). */
  readonly line: string;
  /** The same line as bytes, compared in place with the next file's header line (no string made). */
  readonly bytes: Buffer;
  readonly group: string;
  /** `Group:` as bytes, the start of the value line. */
  readonly prefix: Buffer;
  readonly fields: readonly string[];
}

/** A group of one parse; `values` is reused by the next parse of the same header line (cached ones). */
interface ParsedGroup extends SnmpGroup {
  /** The parse (`parses`) that last filled `values`: a header seen twice in one parse gets a new group. */
  parse: number;
}
let parses = 0;

/**
 * Headers seen, by line length: the next file's header (another netns, same kernel) is found with one
 * byte compare (memcmp) — no string cut out of the file, no per-character loop in JavaScript.
 */
const headerCache = new Map<number, CachedHeader[]>();
let cachedHeaders = 0;
/** The group (with its reused values array) of each cached header. */
const groupOf = new WeakMap<CachedHeader, ParsedGroup>();

function latin1(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, end);
}

function parseHeader(file: string, buf: Buffer, pos: number, end: number): CachedHeader {
  const len = end - pos;
  const known = headerCache.get(len);
  if (known) {
    for (let i = 0; i < known.length; i++) {
      const h = known[i]!;
      if (bytesEqualAt(buf, pos, h.bytes, 0, len)) return h;
    }
  }
  const line = latin1(buf, pos, end);
  const colon = line.indexOf(':');
  if (colon <= 0) {
    throw new ProcfsParseError(file, `header without group: ${JSON.stringify(line.slice(0, 40))}`);
  }
  const group = line.slice(0, colon);
  const fields = line
    .slice(colon + 1)
    .split(' ')
    .filter((f) => f.length > 0);
  for (const f of fields) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f))
      throw new ProcfsParseError(file, `bad field name ${JSON.stringify(f)}`);
  }
  const h: CachedHeader = {
    line,
    bytes: Buffer.from(line, 'latin1'),
    group,
    prefix: Buffer.from(`${group}:`, 'latin1'),
    fields,
  };
  if (cachedHeaders < 64) {
    cachedHeaders++;
    if (known) known.push(h);
    else headerCache.set(len, [h]);
  }
  return h;
}

/**
 * `/proc/<pid>/net/snmp` and `/proc/<pid>/net/netstat` as bytes (`buf[start, end)`), the groups appended
 * to `out`. Groups for which `skip(group, fields)` is true are checked for structure (header, value line
 * prefix) but their values are not parsed nor returned. A group's `values` array belongs to its header
 * line and is reused by the next parse of the same line (another netns): read it before parsing again.
 */
export function parseSnmpBytes(
  buf: Buffer,
  start: number,
  end: number,
  file: string,
  skip: ((group: string, fields: readonly string[]) => boolean) | undefined,
  out: SnmpGroup[],
): void {
  let pairs = 0;
  let pos = start;
  const parse = ++parses;
  while (pos < end) {
    const hEnd = lineEndAt(buf, pos, end);
    if (hEnd === pos) {
      pos++;
      continue; // blank line
    }
    const header = parseHeader(file, buf, pos, hEnd);
    if (hEnd + 1 >= end)
      throw new ProcfsParseError(file, `group ${header.group}: value line missing (truncated)`);
    const vStart = hEnd + 1;
    const vEnd = lineEndAt(buf, vStart, end);
    const prefix = header.prefix;
    if (vEnd - vStart < prefix.length || !bytesEqualAt(buf, vStart, prefix, 0, prefix.length)) {
      throw new ProcfsParseError(
        file,
        `group ${header.group}: value line does not start with ${header.group}:`,
      );
    }
    pairs++;
    if (skip?.(header.group, header.fields)) {
      pos = vEnd + 1;
      continue;
    }
    let g = groupOf.get(header);
    if (g === undefined || g.parse === parse) {
      const fresh: ParsedGroup = { group: header.group, fields: header.fields, values: [], parse };
      if (g === undefined && headerCache.get(header.bytes.length)?.includes(header))
        groupOf.set(header, fresh);
      g = fresh;
    }
    g.parse = parse;
    const n = parseIntsAt(file, buf, vStart + prefix.length, vEnd, g.values, 0);
    if (n !== header.fields.length) {
      throw new ProcfsParseError(
        file,
        `group ${header.group}: ${header.fields.length} fields but ${n} values (truncated?)`,
      );
    }
    g.values.length = n;
    out.push(g);
    pos = vEnd + 1;
  }
  if (pairs === 0) throw new ProcfsParseError(file, 'empty');
}

/**
 * `/proc/<pid>/net/snmp` and `/proc/<pid>/net/netstat` from text (tests, tools; the probe parses the
 * bytes: `parseSnmpBytes`). The groups' values are copies of their own.
 */
export function parseSnmp(
  text: string,
  file = 'net/snmp',
  skip?: (group: string, fields: readonly string[]) => boolean,
): SnmpGroup[] {
  const groups: SnmpGroup[] = [];
  parseSnmpBytes(Buffer.from(text, 'latin1'), 0, text.length, file, skip, groups);
  return groups.map((g) => ({ group: g.group, fields: g.fields, values: [...g.values] }));
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
