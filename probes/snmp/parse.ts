// Parsers of the files the snmp probe reads: net/snmp and net/netstat (pairs of header/value lines,
// headers parsed once and cached) and net/snmp6 (`Name value` lines).
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { isBlank, lineEnd, ProcfsParseError, parseIntsInto } from '../../receiver/procfs/parse.ts';

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
  /** `Group:`, the start of the value line. */
  readonly prefix: string;
  readonly fields: readonly string[];
}
/**
 * Headers seen, by line length: the next file's header (another netns, same kernel) is found with one
 * slice and `===` — no group name cut out, no per-character compare (`startsWith` compared one character
 * at a time: ~25 µs per netns for the 2,000-character TcpExt header).
 */
const headerCache = new Map<number, CachedHeader[]>();
let cachedHeaders = 0;

function parseHeader(file: string, text: string, pos: number, end: number): CachedHeader {
  const line = text.slice(pos, end);
  const known = headerCache.get(line.length);
  if (known) {
    for (const h of known) if (h.line === line) return h;
  }
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
  const h = { line, group, prefix: `${group}:`, fields };
  if (cachedHeaders < 64) {
    cachedHeaders++;
    if (known) known.push(h);
    else headerCache.set(line.length, [h]);
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
    const prefix = header.prefix;
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
