// Independent kernel facts for the kernel-reach scenarios, read without podnet's loader or BTF code:
// the tracepoints an eBPF probe's object attaches to (its ELF section names, read here from the ELF
// section headers) and whether this kernel has each one (its format file in tracefs), with the argument
// fields the format file lists.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const ROOTS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
let tracefs: string | undefined;

/**
 * The tracefs mount, mounted at /sys/kernel/tracing when none is (a machine booted without systemd's
 * mount of it: the benchmark suite's fresh runs failed on that, while in `npm test` an earlier test's
 * podnet had mounted it). Left mounted: it is the kernel's standard mount point, as podnet itself leaves
 * it (receiver/bpf/hooks.ts); mounted here with mount(8), not podnet's code, so the facts stay independent.
 */
function tracefsRoot(): string {
  tracefs ??= ROOTS.find((d) => existsSync(`${d}/events`));
  if (tracefs !== undefined) return tracefs;
  execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'pipe' });
  tracefs = ROOTS.find((d) => existsSync(`${d}/events`));
  if (tracefs === undefined) throw new Error('tracefs mounted at /sys/kernel/tracing, but it has no events/');
  return tracefs;
}

/** Section names of an ELF64 little-endian object. */
export function elfSections(path: string): string[] {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error(`${path}: not ELF64 LE`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const strOff = Number(b.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  const out: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const nameOff = b.readUInt32LE(shoff + i * shentsize);
    const end = b.indexOf(0, strOff + nameOff);
    out.push(b.toString('latin1', strOff + nameOff, end));
  }
  return out;
}

/** Tracepoint names the object's programs attach to (tp_btf/X, raw_tp/X, tracepoint/CAT/X sections). */
export function objectTracepoints(path: string): string[] {
  const names = new Set<string>();
  for (const s of elfSections(path)) {
    const m = /^(?:tp_btf|raw_tp|raw_tracepoint|tracepoint\/[^/]+)\/([A-Za-z0-9_]+)$/.exec(s);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

/** The tracepoint's format file (its fields), or undefined when this kernel has no such tracepoint. */
export function tracepointFormat(name: string): string | undefined {
  const root = tracefsRoot();
  for (const cat of readdirSync(`${root}/events`)) {
    const f = `${root}/events/${cat}/${name}/format`;
    if (existsSync(f)) return readFileSync(f, 'utf8');
  }
  return undefined;
}

/**
 * What a probe's availability must be, from tracefs alone: available when the object attaches to no
 * tracepoint (TC programs) or this kernel has at least one of its tracepoints; `partly` when it has
 * some but not all of them.
 */
export function expectedAvailability(object: string): {
  available: boolean;
  partly: boolean;
  missing: string[];
} {
  const tps = objectTracepoints(object);
  const missing = tps.filter((t) => tracepointFormat(t) === undefined);
  return {
    available: tps.length === 0 || missing.length < tps.length,
    partly: missing.length > 0 && missing.length < tps.length,
    missing,
  };
}
