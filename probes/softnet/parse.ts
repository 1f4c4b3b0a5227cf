// Parser of net/softnet_stat, the file the softnet probe reads.
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { lineEnd, ProcfsParseError } from '../../receiver/procfs/parse.ts';

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
