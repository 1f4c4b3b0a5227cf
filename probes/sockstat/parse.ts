// Parser of net/sockstat and net/sockstat6 (read by the sockstat probe; the sockets probe reads them
// too, to skip the netlink dump of a netns without sockets).
// Malformed input throws `ProcfsParseError` (see receiver/procfs/parse.ts): an error for that read, never a
// crash and never a silently wrong number.
import { isBlank, lineEnd, ProcfsParseError } from '../../receiver/procfs/parse.ts';

// net/sockstat, net/sockstat6: `PROTO: key value key value ...`

export interface SockstatEntry {
  /** `sockets`, `TCP`, `UDP`, `UDPLITE`, `RAW`, `FRAG`, `TCP6`, ... */
  readonly proto: string;
  /** `used`, `inuse`, `orphan`, `tw`, `alloc`, `mem`, `memory`. */
  readonly key: string;
  readonly value: number;
}

/** Called once per `PROTO: key value` pair of a sockstat file, in file order. */
export type SockstatVisitor = (proto: string, key: string, value: number) => void;

const MINUS = 45;

// The protocol and key names the kernel prints, by length: a name is matched in place and the constant
// returned, so a parse (two per netns per collection) makes no string per name; others are cut out.
const KNOWN = new Map<number, string[]>();
for (const name of [
  'sockets',
  'TCP',
  'UDP',
  'UDPLITE',
  'RAW',
  'FRAG',
  'TCP6',
  'UDP6',
  'UDPLITE6',
  'RAW6',
  'FRAG6',
  'used',
  'inuse',
  'orphan',
  'tw',
  'alloc',
  'mem',
  'memory',
]) {
  const list = KNOWN.get(name.length);
  if (list) list.push(name);
  else KNOWN.set(name.length, [name]);
}

/** `k` when `text` holds it at `start` (compared char by char: no iterator, no substring). */
function sameAt(text: string, start: number, k: string): boolean {
  for (let i = 0; i < k.length; i++) if (text.charCodeAt(start + i) !== k.charCodeAt(i)) return false;
  return true;
}

function token(text: string, start: number, end: number): string {
  const list = KNOWN.get(end - start);
  if (list !== undefined)
    for (let i = 0; i < list.length; i++) {
      const k = list[i]!;
      if (sameAt(text, start, k)) return k;
    }
  return text.slice(start, end);
}

/**
 * Walks net/sockstat or net/sockstat6 and hands each pair to `visit`, without building entry objects
 * (read per netns per collection by two probes). Throws `ProcfsParseError` on malformed text; pairs
 * before the bad one have been visited by then, so a caller that emits points as it goes drops them on
 * a throw (the procfs kit does: receiver/kit/procfs.ts).
 */
export function forEachSockstat(text: string, file: string, visit: SockstatVisitor): void {
  let pairsInFile = 0;
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
    const proto = token(text, pos, colon);
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
      const key = token(text, k0, i);
      while (i < end && isBlank(text.charCodeAt(i))) i++;
      if (i >= end) throw new ProcfsParseError(file, `${proto}: ${key} without value (truncated?)`);
      // One optionally negative decimal integer, up to the next blank (as parseIntsInto accepts it).
      let neg = false;
      if (text.charCodeAt(i) === MINUS) {
        neg = true;
        i++;
      }
      const d0 = i;
      let v = 0;
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c < 48 || c > 57) break;
        v = v * 10 + (c - 48);
        i++;
      }
      if (i === d0 || (i < end && !isBlank(text.charCodeAt(i)))) {
        throw new ProcfsParseError(file, `bad number near ${JSON.stringify(text.slice(d0, d0 + 20))}`);
      }
      visit(proto, key, neg ? -v : v);
      pairs++;
    }
    if (pairs === 0) throw new ProcfsParseError(file, `${proto}: no values (truncated?)`);
    pairsInFile += pairs;
    pos = end + 1;
  }
  if (pairsInFile === 0) throw new ProcfsParseError(file, 'empty');
}

export function parseSockstat(
  text: string,
  file = 'net/sockstat',
  out: SockstatEntry[] = [],
): SockstatEntry[] {
  forEachSockstat(text, file, (proto, key, value) => {
    out.push({ proto, key, value });
  });
  return out;
}
