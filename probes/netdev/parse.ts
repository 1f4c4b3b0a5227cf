// Parser of net/dev, the file the netdev probe reads.
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { isBlank, lineEnd, ProcfsParseError, parseIntsInto } from '../../receiver/procfs/parse.ts';

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
