// Parser of net/dev, the file the netdev probe reads.
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { bytesEqualAt, lineEndAt, ProcfsParseError, parseIntsAt } from '../../receiver/procfs/parse.ts';

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

/** Rows of one net/dev, reused from file to file: row i is `names[i]`, `values[16 i, 16 i + 16)`. */
export interface NetDevRows {
  count: number;
  readonly names: string[];
  readonly values: number[];
}

export function netDevRows(): NetDevRows {
  return { count: 0, names: [], values: [] };
}

// Interface names seen, as bytes and as the string: a row's name is matched in place (memcmp) and the
// kept string reused, so a file (each netns, each collection: lo, eth0...) makes no string per row.
const knownNames = new Map<number, { bytes: Buffer; name: string }[]>();
let knownCount = 0;

function nameAt(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  const list = knownNames.get(len);
  if (list !== undefined)
    for (let i = 0; i < list.length; i++) {
      const k = list[i]!;
      if (bytesEqualAt(buf, start, k.bytes, 0, len)) return k.name;
    }
  const name = buf.toString('latin1', start, end);
  if (knownCount < 1024) {
    knownCount++;
    const entry = { bytes: Buffer.from(name, 'latin1'), name };
    if (list) list.push(entry);
    else knownNames.set(len, [entry]);
  }
  return name;
}

const PIPE = 124;
const COLON = 58;

/**
 * `/proc/<pid>/net/dev` as bytes (`buf[start, end)`): two header lines, then `name: 16 numbers` per
 * interface, into `rows` (overwritten).
 */
export function parseNetDevBytes(
  buf: Buffer,
  start: number,
  end: number,
  file: string,
  rows: NetDevRows,
): void {
  rows.count = 0;
  let pos = start;
  let line = 0;
  while (pos < end) {
    const lEnd = lineEndAt(buf, pos, end);
    if (line < 2) {
      // Header lines: `Inter-|   Receive ...` and ` face |bytes ...`.
      const bar = buf.indexOf(PIPE, pos);
      if (bar < 0 || bar > lEnd) throw new ProcfsParseError(file, 'missing header');
    } else if (lEnd > pos) {
      const colon = buf.indexOf(COLON, pos);
      if (colon < 0 || colon > lEnd)
        throw new ProcfsParseError(file, `row without interface name (line ${line + 1})`);
      let s = pos;
      while (s < colon && (buf[s] === 32 || buf[s] === 9)) s++;
      if (s === colon) throw new ProcfsParseError(file, `empty interface name (line ${line + 1})`);
      const name = nameAt(buf, s, colon);
      const at = rows.count * 16;
      const n = parseIntsAt(file, buf, colon + 1, lEnd, rows.values, at) - at;
      if (n !== 16) {
        throw new ProcfsParseError(file, `interface ${name}: ${n} columns instead of 16 (truncated?)`);
      }
      rows.names[rows.count++] = name;
    }
    line++;
    pos = lEnd + 1;
  }
  if (line < 2) throw new ProcfsParseError(file, 'missing header (truncated)');
}

/** `/proc/<pid>/net/dev` from text (tests; the probe parses the bytes: `parseNetDevBytes`). */
export function parseNetDev(text: string, file = 'net/dev'): NetDevRow[] {
  const rows = netDevRows();
  parseNetDevBytes(Buffer.from(text, 'latin1'), 0, text.length, file, rows);
  return rows.names
    .slice(0, rows.count)
    .map((name, i) => ({ name, values: rows.values.slice(16 * i, 16 * i + 16) }));
}
