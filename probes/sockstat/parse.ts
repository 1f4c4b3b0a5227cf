// Parser of net/sockstat and net/sockstat6 (read by the sockstat probe; the sockets probe reads them
// too, to skip the netlink dump of a netns without sockets).
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { isBlank, lineEnd, ProcfsParseError, parseIntsInto } from '../../receiver/procfs/parse.ts';

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
