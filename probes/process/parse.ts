// Parser of /proc/<pid>/io, read by the process probe.
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { lineEnd, ProcfsParseError, parseIntsInto } from '../../receiver/procfs/parse.ts';

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
