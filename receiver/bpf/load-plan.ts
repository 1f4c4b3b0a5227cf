// The load plan: which of an object's programs load on this kernel (hooks probed against the kernel's
// BTF before loading, tp_btf prototype variants picked by argument count), how `.rodata` tunables are
// written into an opened object, and which part of a failed load's log belongs to which program. Its own
// file: it decides what to load, object.ts does the loading and holds the result.
import koffi from 'koffi';
import { kernelBtfProblem, NoKernelBtfError, withVmlinuxBtf } from './btf.ts';
import { checkHook } from './hooks.ts';
import { libbpf, type Ptr } from './libbpf.ts';
import { findMap, isRodataMap } from './object-handle.ts';
import type { LoadOptions, ProgramSpec, ProgramState, RodataValue, RodataVar } from './object-types.ts';

export type LoadPlan = Map<string, { state: ProgramState; reason?: string }>;

/** BpfSpec.plan(): see there. */
export function planPrograms(
  programs: readonly ProgramSpec[],
  options: Pick<LoadOptions, 'programs'> = {},
): LoadPlan {
  const plan = new Map<string, { state: ProgramState; reason?: string }>();
  const problem = kernelBtfProblem();
  if (problem) throw new NoKernelBtfError(problem);
  withVmlinuxBtf((btf) => {
    const groups = new Map<string, string[]>();
    for (const p of programs) {
      const o = options.programs?.[p.name];
      if (o?.enabled === false) {
        plan.set(p.name, { state: 'disabled', reason: 'disabled by configuration' });
        continue;
      }
      const c = checkHook(p.hook, btf);
      if (!c.available) {
        plan.set(p.name, { state: 'unavailable', reason: c.reason ?? 'hook not available' });
        continue;
      }
      if (o?.tpArgs !== undefined && c.args !== undefined) {
        const want = o.tpArgs;
        const ok =
          typeof want === 'number'
            ? c.args === want
            : (want.min === undefined || c.args >= want.min) &&
              (want.max === undefined || c.args <= want.max);
        const g = groups.get(p.section) ?? [];
        g.push(p.name);
        groups.set(p.section, g);
        if (!ok) {
          plan.set(p.name, {
            state: 'skipped',
            reason: `prototype variant for ${JSON.stringify(want)} args; ${p.hook.target} has ${c.args} here`,
          });
          continue;
        }
      }
      plan.set(p.name, { state: 'loaded' });
    }
    for (const [section, names] of groups) {
      if (names.every((n) => plan.get(n)?.state === 'skipped')) {
        for (const n of names) {
          plan.set(n, {
            state: 'unavailable',
            reason: `no prototype variant of ${section} matches this kernel (${plan.get(n)?.reason ?? ''})`,
          });
        }
      }
    }
  });
  return plan;
}

/** Writes `.rodata` tunables into an opened (not yet loaded) object; `vars` are the spec's DATASEC offsets. */
export function writeRodata(
  obj: Ptr,
  objectName: string,
  vars: ReadonlyMap<string, RodataVar>,
  values: Readonly<Record<string, RodataValue>>,
): void {
  const names = Object.keys(values);
  if (names.length === 0) return;
  const a = libbpf();
  const m = findMap(obj, isRodataMap);
  if (!m) throw new Error(`object ${objectName} has no .rodata section`);
  const size: [number] = [0];
  const ptr = a.bpf_map__initial_value(m, size);
  if (!ptr) throw new Error(`object ${objectName}: cannot access .rodata initial value`);
  const dv = new DataView(koffi.view(ptr, size[0]));
  for (const name of names) {
    const v = vars.get(name)!;
    const value = values[name]!;
    if (v.offset + v.size > size[0]) throw new Error(`.rodata ${name} lies outside the section`);
    if (value instanceof Uint8Array) {
      if (value.length > v.size) throw new RangeError(`.rodata ${name}: ${value.length} bytes > ${v.size}`);
      new Uint8Array(dv.buffer, v.offset, v.size).fill(0).set(value);
      continue;
    }
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    switch (v.size) {
      case 1:
        dv.setUint8(v.offset, Number(n) & 0xff);
        break;
      case 2:
        dv.setUint16(v.offset, Number(n) & 0xffff, true);
        break;
      case 4:
        dv.setUint32(v.offset, Number(n) >>> 0, true);
        break;
      case 8:
        dv.setBigUint64(v.offset, BigInt.asUintN(64, BigInt(n)), true);
        break;
      default:
        throw new RangeError(`.rodata ${name} is ${v.size} bytes: pass a Uint8Array`);
    }
  }
}

/** The part of a load log about one program (its lines and its verifier log). */
export function programLog(log: string, name: string): string {
  const lines = log.split('\n');
  const out: string[] = [];
  let inBlock = false;
  for (const l of lines) {
    if (l.includes(`prog '${name}': -- BEGIN PROG LOAD LOG --`)) inBlock = true;
    if (inBlock || l.includes(`prog '${name}'`)) out.push(l);
    if (inBlock && l.includes('-- END PROG LOAD LOG --')) inBlock = false;
  }
  return out.join('\n');
}
