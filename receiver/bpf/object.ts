// BPF objects: the spec (what the ELF holds: programs, sections, maps, .rodata tunables) and the loaded
// collection (kernel programs, maps, links), after cilium/ebpf's Spec/Collection split.
//
//   const spec = BpfSpec.fromFile(new URL('./drop.bpf.o', import.meta.url));
//   using coll = spec.load({ rodata: { cfg_x: 1 }, maxEntries: { pn_events: 8 << 20 } });
//   coll.attach();
//   coll.status();          // running | degraded (reason) | unavailable (reason)
//
// load() probes every program's hook first and disables what this kernel cannot run (with a reason),
// picks tp_btf prototype variants by BTF argument count, writes .rodata (offsets from the object's BTF
// DATASEC), resizes maps, loads, and if the kernel still refuses a program it closes the object, reopens
// it without that program and retries. attach() attaches each program on its own: one failure leaves the
// rest running.
//
// The parts live next to it: load-plan.ts (what loads on this kernel, .rodata writing), object-handle.ts
// (libbpf object handle and iterators), program.ts (a loaded program), object-types.ts (shared shapes).
// Everything stays importable from here.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { childLogger, type Logger } from '../log/logger.ts';
import type { ProbeStatus } from '../probe/types.ts';
import { Btf } from './btf.ts';
import { BpfCapabilityError, bpfCapabilityProblem, missingBpfCapabilities } from './caps.ts';
import { parseSection } from './hooks.ts';
import { BpfError, captureLog, libbpf, type Ptr, verifierSummary } from './libbpf.ts';
import { track, untrack } from './lifecycle.ts';
import { planPrograms, programLog, writeRodata } from './load-plan.ts';
import { BpfMap } from './maps.ts';
import { findMap, mapPtrs, openObject, programPtrs, type Source } from './object-handle.ts';
import type {
  LoadOptions,
  MapSpec,
  ObjectStatus,
  ProgramSpec,
  ProgramState,
  RodataVar,
} from './object-types.ts';
import { BpfProgram } from './program.ts';

export type {
  LoadOptions,
  MapSpec,
  ObjectStatus,
  ProgramOptions,
  ProgramSpec,
  ProgramState,
  ProgramStatus,
  RodataValue,
  RodataVar,
} from './object-types.ts';
export { BpfProgram } from './program.ts';

/** What an object file holds, read without touching the kernel. */
export class BpfSpec {
  readonly name: string;
  readonly programs: readonly ProgramSpec[];
  readonly maps: readonly MapSpec[];
  /** `.rodata` variables (tunables) → offset/size, from the object's BTF DATASEC. */
  readonly rodata: ReadonlyMap<string, RodataVar>;
  readonly #source: Source;

  private constructor(source: Source, name: string) {
    this.#source = source;
    this.name = name;
    const a = libbpf();
    const obj = openObject(source, name);
    try {
      this.programs = [...programPtrs(obj)].map((p) => {
        const section = a.bpf_program__section_name(p);
        return {
          name: a.bpf_program__name(p),
          section,
          hook: parseSection(section),
          type: a.bpf_program__type(p),
        };
      });
      this.maps = [...mapPtrs(obj)].map((m) => ({
        name: a.bpf_map__name(m),
        type: a.bpf_map__type(m),
        keySize: a.bpf_map__key_size(m),
        valueSize: a.bpf_map__value_size(m),
        maxEntries: a.bpf_map__max_entries(m),
      }));
      const btfPtr = a.bpf_object__btf(obj);
      this.rodata = btfPtr ? Btf.borrowed(btfPtr).datasec('.rodata') : new Map();
    } finally {
      a.bpf_object__close(obj);
    }
  }

  /** Reads an object file (path or file: URL). The bytes are kept: reloading needs no file access. */
  static fromFile(path: string | URL): BpfSpec {
    const p = typeof path === 'string' ? path : fileURLToPath(path);
    let bytes: Buffer;
    try {
      bytes = readFileSync(p);
    } catch (err) {
      throw new Error(`cannot read BPF object ${p}: ${(err as Error).message}`);
    }
    return new BpfSpec({ kind: 'mem', bytes }, basename(p).replace(/\.bpf\.o$|\.o$/, ''));
  }

  /** An object in memory (e.g. embedded); `name` names it in logs and internal map names. */
  static fromBuffer(bytes: Uint8Array, name: string): BpfSpec {
    return new BpfSpec({ kind: 'mem', bytes: Buffer.from(bytes) }, name);
  }

  /** Opens by path through libbpf's own file reader (bpf_object__open_file). */
  static openFile(path: string): BpfSpec {
    return new BpfSpec({ kind: 'file', path }, basename(path).replace(/\.bpf\.o$|\.o$/, ''));
  }

  program(name: string): ProgramSpec {
    const p = this.programs.find((x) => x.name === name);
    if (!p) throw new Error(`object ${this.name} has no program ${name}`);
    return p;
  }

  /** Probes hooks, configures, loads (retrying without programs the kernel refuses). Does not attach. */
  load(options: LoadOptions = {}): BpfCollection {
    const log = options.log ?? childLogger('bpf', { object: this.name });
    const a = libbpf();
    for (const k of Object.keys(options.rodata ?? {})) {
      if (!this.rodata.has(k)) {
        throw new Error(
          `object ${this.name}: no .rodata variable '${k}' (has: ${[...this.rodata.keys()].join(', ') || 'none'})`,
        );
      }
    }
    for (const k of Object.keys(options.maxEntries ?? {})) {
      if (!this.maps.some((m) => m.name === k)) throw new Error(`object ${this.name}: no map '${k}'`);
    }
    for (const k of Object.keys(options.programs ?? {})) this.program(k);
    // Without CAP_BPF / CAP_PERFMON (and CAP_SYS_ADMIN) the kernel refuses the maps or every program with a
    // bare EPERM: name the capability and what it disables instead.
    const tracing = this.programs.some(
      (p) => options.programs?.[p.name]?.enabled !== false && p.hook.kind !== 'other',
    );
    const capProblem = bpfCapabilityProblem({ tracing });
    if (capProblem)
      throw new BpfCapabilityError(this.name, missingBpfCapabilities(undefined, tracing), capProblem);

    const plan = this.plan(options);
    const logs = new Map<string, string>();
    let obj: Ptr | null = null;
    for (let attempt = 0; ; attempt++) {
      obj = openObject(this.#source, this.name);
      try {
        for (const p of programPtrs(obj)) {
          const st = plan.get(a.bpf_program__name(p));
          a.bpf_program__set_autoload(p, st?.state === 'loaded');
        }
        writeRodata(obj, this.name, this.rodata, options.rodata ?? {});
        for (const [name, n] of Object.entries(options.maxEntries ?? {})) {
          const m = findMap(obj, (x) => x === name);
          if (m) {
            const r = a.bpf_map__set_max_entries(m, n);
            if (r < 0) throw new BpfError(`bpf_map__set_max_entries(${name}, ${n})`, -r);
          }
        }
      } catch (err) {
        a.bpf_object__close(obj);
        throw err;
      }
      const objPtr = obj;
      const { result: ret, log: loadLog } = captureLog(() => a.bpf_object__load(objPtr));
      if (ret === 0) break;
      a.bpf_object__close(obj);
      obj = null;
      const err = new BpfError(`bpf_object__load(${this.name})`, -ret, loadLog);
      const failing = err.programs.filter((n) => plan.get(n)?.state === 'loaded');
      if (options.strict || failing.length === 0 || attempt > this.programs.length) throw err;
      for (const name of failing) {
        const verifier = verifierSummary(programLog(loadLog, name));
        const reason = `load failed: ${err.libbpfMessage}${verifier ? ` — verifier: ${verifier}` : ''}${
          err.errno === 1 && !verifier
            ? ' (EPERM with no verifier log although the eBPF capabilities are effective: refused by kernel policy — lockdown, an LSM or seccomp)'
            : ''
        }`;
        plan.set(name, { state: 'unavailable', reason });
        logs.set(name, programLog(loadLog, name));
        log.warn({ program: name, reason }, 'BPF program disabled; retrying load without it');
      }
    }
    return new BpfCollection(this, obj, plan, logs, options, log);
  }

  /**
   * What load() would do with each program on this kernel, without loading: `loaded` (will load),
   * `disabled` (by options), `skipped` (another prototype variant matches), `unavailable` (hook missing).
   * Availability checks use it so that they see exactly what load needs. Throws NoKernelBtfError when the
   * kernel has no BTF.
   */
  plan(options: Pick<LoadOptions, 'programs'> = {}): Map<string, { state: ProgramState; reason?: string }> {
    return planPrograms(this.programs, options);
  }
}

/** Loaded programs and maps of one object. Close it (or `using`) to detach and free everything. */
export class BpfCollection {
  readonly name: string;
  readonly spec: BpfSpec;
  readonly programs: ReadonlyMap<string, BpfProgram>;
  readonly maps: ReadonlyMap<string, BpfMap>;
  #obj: Ptr | null;
  readonly #log: Logger;

  constructor(
    spec: BpfSpec,
    obj: Ptr,
    plan: Map<string, { state: ProgramState; reason?: string }>,
    logs: Map<string, string>,
    options: LoadOptions,
    log: Logger,
  ) {
    const a = libbpf();
    this.spec = spec;
    this.name = `bpf:${spec.name}`;
    this.#obj = obj;
    this.#log = log;
    const ptrs = new Map<string, Ptr>();
    for (const p of programPtrs(obj)) ptrs.set(a.bpf_program__name(p), p);
    const programs = new Map<string, BpfProgram>();
    for (const ps of spec.programs) {
      const st = plan.get(ps.name) ?? { state: 'unavailable' as const, reason: 'not planned' };
      const prog = new BpfProgram(
        ps,
        ptrs.get(ps.name) ?? null,
        st,
        options.programs?.[ps.name]?.autoAttach !== false,
      );
      prog.log = logs.get(ps.name);
      programs.set(ps.name, prog);
    }
    this.programs = programs;
    const maps = new Map<string, BpfMap>();
    for (const m of mapPtrs(obj)) {
      const name = a.bpf_map__name(m);
      maps.set(
        name,
        new BpfMap({
          name,
          fd: a.bpf_map__fd(m),
          type: a.bpf_map__type(m),
          keySize: a.bpf_map__key_size(m),
          valueSize: a.bpf_map__value_size(m),
          maxEntries: a.bpf_map__max_entries(m),
        }),
      );
    }
    this.maps = maps;
    track(this);
    log.debug({ programs: [...programs.values()].map((p) => p.status()) }, 'BPF object loaded');
  }

  get closed(): boolean {
    return this.#obj === null;
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new Error(`${this.name}: no map '${name}' (has: ${[...this.maps.keys()].join(', ')})`);
    if (this.closed) throw new Error(`${this.name} is closed`);
    return m;
  }

  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (!p) throw new Error(`${this.name}: no program '${name}'`);
    return p;
  }

  /** Attaches every loaded program (autoAttach), each on its own. Returns the resulting status. */
  attach(): ObjectStatus {
    for (const p of this.programs.values()) {
      if (p.state === 'loaded' && p.autoAttach) this.attachProgram(p.name);
    }
    const st = this.status();
    if (st.state !== 'running')
      this.#log.warn({ reason: st.reason }, `BPF object ${this.spec.name} ${st.state}`);
    return st;
  }

  /** Attaches one program; on failure it becomes `unavailable` with the reason (no throw). */
  attachProgram(name: string): boolean {
    const p = this.program(name);
    if (p.state === 'attached') return true;
    if (p.state !== 'loaded' || !p.ptr) return false;
    const a = libbpf();
    const ptr = p.ptr;
    const { result: link, log } = captureLog(() => a.bpf_program__attach(ptr));
    if (!link) {
      const err = new BpfError(`bpf_program__attach(${name})`, koffi.errno() || 22, log);
      const lines = log
        .split('\n')
        .map((l) => l.replace(/^libbpf: /, '').trim())
        .filter((l) => l && !/hint/.test(l));
      const own = lines
        .filter((l) => l.startsWith(`prog '${name}': `))
        .map((l) => l.slice(`prog '${name}': `.length));
      const detail = own.at(-1) ?? lines.at(-1) ?? '';
      p.state = 'unavailable';
      p.reason = `attach failed: ${err.libbpfMessage}${detail ? ` (${detail})` : ''}`;
      p.log = log;
      this.#log.warn({ program: name, reason: p.reason }, 'BPF program not attached');
      return false;
    }
    p.link = link;
    p.state = 'attached';
    return true;
  }

  /** Destroys one program's link (it stays loaded and can be attached again). */
  detachProgram(name: string): void {
    const p = this.program(name);
    if (p.link) {
      libbpf().bpf_link__destroy(p.link);
      p.link = null;
      p.state = 'loaded';
    }
  }

  status(): ObjectStatus {
    const programs = [...this.programs.values()].map((p) => p.status());
    if (this.closed) return { state: 'unavailable', reason: 'closed', programs };
    const wanted = [...this.programs.values()].filter((p) => p.state !== 'disabled' && p.state !== 'skipped');
    const running = wanted.filter((p) => p.state === 'attached' || (p.state === 'loaded' && !p.autoAttach));
    const down = wanted.filter((p) => !running.includes(p));
    const reason = down.map((p) => `${p.name}: ${p.reason ?? p.state}`).join('; ');
    if (wanted.length === 0) return { state: 'unavailable', reason: 'no program enabled', programs };
    if (down.length === 0) return { state: 'running', programs };
    if (running.length === 0) return { state: 'unavailable', reason, programs };
    return { state: 'degraded', reason, programs };
  }

  /** The status in the probe interface's shape (receiver/probe/types.ts). */
  probeStatus(): ProbeStatus {
    const s = this.status();
    return { state: s.state, ...(s.reason ? { reason: s.reason } : {}), details: { programs: s.programs } };
  }

  /** Destroys all links and closes the object (programs and maps). Idempotent. */
  close(): void {
    if (!this.#obj) return;
    const a = libbpf();
    for (const p of this.programs.values()) {
      if (p.link) {
        a.bpf_link__destroy(p.link);
        p.link = null;
      }
      p.state = p.state === 'attached' || p.state === 'loaded' ? 'closed' : p.state;
    }
    a.bpf_object__close(this.#obj);
    this.#obj = null;
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
