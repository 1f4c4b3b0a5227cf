// BTF readers over libbpf's parsed BTF: enum value→name maps, tracepoint prototypes, struct and DATASEC
// layouts. Works on the running kernel's BTF (`Btf.vmlinux()`, no root or tracefs needed) and on an
// object's own BTF (`bpf_object__btf`). Kernel facts come from here, never from compiled-in constants.
import { existsSync } from 'node:fs';
import koffi from 'koffi';
import { BpfError, libbpf, type Ptr } from './libbpf.ts';

export const BTF_KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface BtfType {
  readonly id: number;
  readonly name: string;
  readonly kind: number;
  readonly vlen: number;
  readonly kflag: boolean;
  /** `size` for INT/STRUCT/UNION/ENUM/DATASEC, `type` for PTR/TYPEDEF/FUNC/VAR/CONST... */
  readonly sizeOrType: number;
  /** The type record (12 bytes) followed by its vlen members. */
  readonly view: DataView;
}

export interface FieldLayout {
  /** Byte offset (for bitfields: offset of the containing byte). */
  readonly offset: number;
  /** Size in bytes (for bitfields: 0). */
  readonly size: number;
  readonly bitOffset: number;
  readonly bitSize: number;
  readonly typeId: number;
}

export interface StructLayout {
  readonly name: string;
  readonly size: number;
  readonly fields: ReadonlyMap<string, FieldLayout>;
}

export interface VarLayout {
  readonly offset: number;
  readonly size: number;
}

/** Size of each member record after a btf_type, per kind. */
function memberSize(kind: number): number {
  switch (kind) {
    case BTF_KIND.ENUM:
      return 8; // btf_enum { name_off, val }
    case BTF_KIND.ENUM64:
      return 12; // btf_enum64 { name_off, val_lo32, val_hi32 }
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
      return 12; // btf_member { name_off, type, offset }
    case BTF_KIND.FUNC_PROTO:
      return 8; // btf_param { name_off, type }
    case BTF_KIND.DATASEC:
      return 12; // btf_var_secinfo { type, offset, size }
    default:
      return 0;
  }
}

function extraSize(kind: number): number {
  if (kind === BTF_KIND.INT || kind === BTF_KIND.VAR || kind === BTF_KIND.DECL_TAG) return 4;
  if (kind === BTF_KIND.ARRAY) return 12;
  return 0;
}

/** A parsed BTF (vmlinux or an object's). Dispose vmlinux BTF after configuration: it is large. */
export class Btf {
  readonly ptr: Ptr;
  readonly owned: boolean;
  #closed = false;

  private constructor(ptr: Ptr, owned: boolean) {
    this.ptr = ptr;
    this.owned = owned;
  }

  /** The running kernel's BTF (/sys/kernel/btf/vmlinux). The caller must close() it. */
  static vmlinux(): Btf {
    const a = libbpf();
    const p = a.btf__load_vmlinux_btf();
    if (!p)
      throw new BpfError('btf__load_vmlinux_btf', koffi.errno() || 2, '', 'is the kernel built with BTF?');
    return new Btf(p, true);
  }

  /**
   * The BTF of a file: an ELF object's `.BTF` section (a compiled `.bpf.o`, as clang wrote it: DATASEC
   * sizes and offsets are not fixed up) or raw BTF. No privileges needed. The caller must close() it.
   */
  static fromFile(path: string): Btf {
    const p = libbpf().btf__parse(path, null);
    if (!p) throw new BpfError(`btf__parse(${path})`, koffi.errno() || 2);
    return new Btf(p, true);
  }

  /** Wraps a BTF owned by someone else (e.g. bpf_object__btf); close() does not free it. */
  static borrowed(ptr: Ptr): Btf {
    return new Btf(ptr, false);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.owned) libbpf().btf__free(this.ptr);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #live(): void {
    if (this.#closed) throw new Error('BTF used after close()');
  }

  /** Number of type ids (valid ids are 1 .. count - 1; 0 is void). */
  typeCount(): number {
    this.#live();
    return libbpf().btf__type_cnt(this.ptr);
  }

  /** Type id of `name` with `kind`, or null. */
  findId(name: string, kind: number): number | null {
    this.#live();
    const id = libbpf().btf__find_by_name_kind(this.ptr, name, kind);
    return id > 0 ? id : null;
  }

  type(id: number): BtfType {
    this.#live();
    const a = libbpf();
    const p = a.btf__type_by_id(this.ptr, id);
    if (!p) throw new Error(`BTF type id ${id} does not exist`);
    const head = new DataView(koffi.view(p, 12));
    const info = head.getUint32(4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const len = 12 + extraSize(kind) + vlen * memberSize(kind);
    const view = new DataView(koffi.view(p, len));
    return {
      id,
      name: this.name(head.getUint32(0, true)),
      kind,
      vlen,
      kflag: info >>> 31 === 1,
      sizeOrType: head.getUint32(8, true),
      view,
    };
  }

  name(off: number): string {
    if (off === 0) return '';
    return libbpf().btf__name_by_offset(this.ptr, off) ?? '';
  }

  /** Follows TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG to the underlying type. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let i = 0; i < 32; i++) {
      if (
        t.kind === BTF_KIND.TYPEDEF ||
        t.kind === BTF_KIND.CONST ||
        t.kind === BTF_KIND.VOLATILE ||
        t.kind === BTF_KIND.RESTRICT ||
        t.kind === BTF_KIND.TYPE_TAG
      ) {
        t = this.type(t.sizeOrType);
      } else break;
    }
    return t;
  }

  sizeOf(id: number): number {
    const s = Number(libbpf().btf__resolve_size(this.ptr, id));
    return Math.max(s, 0);
  }

  /**
   * Values of an enum (ENUM or ENUM64) as value → name, with `stripPrefix` removed from names.
   * Throws when the enum does not exist in this BTF.
   */
  enumNames(enumName: string, stripPrefix = ''): Map<number, string> {
    const id = this.findId(enumName, BTF_KIND.ENUM) ?? this.findId(enumName, BTF_KIND.ENUM64);
    if (id === null) throw new Error(`enum ${enumName} not found in BTF`);
    const t = this.type(id);
    const out = new Map<number, string>();
    const signed = t.kflag;
    for (let i = 0; i < t.vlen; i++) {
      let value: number;
      let nameOff: number;
      if (t.kind === BTF_KIND.ENUM) {
        const o = 12 + i * 8;
        nameOff = t.view.getUint32(o, true);
        value = signed ? t.view.getInt32(o + 4, true) : t.view.getUint32(o + 4, true);
      } else {
        const o = 12 + i * 12;
        nameOff = t.view.getUint32(o, true);
        const lo = t.view.getUint32(o + 4, true);
        const hi = t.view.getUint32(o + 8, true);
        value = signed && hi & 0x80000000 ? Number((BigInt(hi | 0) << 32n) | BigInt(lo)) : hi * 2 ** 32 + lo;
      }
      let n = this.name(nameOff);
      if (stripPrefix && n.startsWith(stripPrefix)) n = n.slice(stripPrefix.length);
      if (!out.has(value)) out.set(value, n);
    }
    return out;
  }

  /**
   * Argument count of a raw tracepoint (what tp_btf/raw_tp programs receive), from the
   * `btf_trace_<name>` typedef: TYPEDEF → PTR → FUNC_PROTO, minus the leading `void *__data`.
   * null when the tracepoint does not exist in this kernel.
   */
  tracepointArgs(tp: string): number | null {
    const id = this.findId(`btf_trace_${tp}`, BTF_KIND.TYPEDEF);
    if (id === null) return null;
    const ptr = this.type(this.type(id).sizeOrType);
    if (ptr.kind !== BTF_KIND.PTR) return null;
    const proto = this.type(ptr.sizeOrType);
    if (proto.kind !== BTF_KIND.FUNC_PROTO) return null;
    return Math.max(0, proto.vlen - 1);
  }

  /** True when a FUNC named `name` exists (the target of fentry/fexit). */
  hasFunc(name: string): boolean {
    return this.findId(name, BTF_KIND.FUNC) !== null;
  }

  /** Byte layout of a struct or union: field name → offset/size (anonymous members are flattened). */
  structLayout(name: string): StructLayout {
    const id = this.findId(name, BTF_KIND.STRUCT) ?? this.findId(name, BTF_KIND.UNION);
    if (id === null) throw new Error(`struct ${name} not found in BTF`);
    const t = this.type(id);
    const fields = new Map<string, FieldLayout>();
    this.#collectMembers(t, 0, fields, 0);
    return { name, size: t.sizeOrType, fields };
  }

  #collectMembers(t: BtfType, baseBits: number, out: Map<string, FieldLayout>, depth: number): void {
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 12;
      const nameOff = t.view.getUint32(o, true);
      const typeId = t.view.getUint32(o + 4, true);
      const raw = t.view.getUint32(o + 8, true);
      const bitOffset = baseBits + (t.kflag ? raw & 0xffffff : raw);
      const bitSize = t.kflag ? raw >>> 24 : 0;
      const name = this.name(nameOff);
      if (!name) {
        const inner = this.resolve(typeId);
        if ((inner.kind === BTF_KIND.STRUCT || inner.kind === BTF_KIND.UNION) && depth < 8) {
          this.#collectMembers(inner, bitOffset, out, depth + 1);
        }
        continue;
      }
      out.set(name, {
        offset: Math.floor(bitOffset / 8),
        size: bitSize ? 0 : this.sizeOf(typeId),
        bitOffset,
        bitSize,
        typeId,
      });
    }
  }

  /** Variables of a DATASEC (e.g. `.rodata`, `.bss`): name → offset/size. */
  datasec(secName: string): Map<string, VarLayout> {
    const id = this.findId(secName, BTF_KIND.DATASEC);
    const out = new Map<string, VarLayout>();
    if (id === null) return out;
    const t = this.type(id);
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 12;
      const varId = t.view.getUint32(o, true);
      const offset = t.view.getUint32(o + 4, true);
      const size = t.view.getUint32(o + 8, true);
      out.set(this.type(varId).name, { offset, size });
    }
    return out;
  }

  /** All DATASEC names in this BTF (an object's `.rodata`, `.bss`, `<obj>.rodata` ...). */
  datasecNames(): string[] {
    this.#live();
    const n = libbpf().btf__type_cnt(this.ptr);
    const out: string[] = [];
    for (let id = 1; id < n; id++) {
      const t = this.type(id);
      if (t.kind === BTF_KIND.DATASEC) out.push(t.name);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// Kernel facts, cached after the first read (the parsed vmlinux BTF is freed right away)

const enumCache = new Map<string, Map<number, string>>();

/** The kernel has no BTF: every CO-RE program (all eBPF probes) is unusable; procfs/netlink probes still run. */
export class NoKernelBtfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoKernelBtfError';
  }
}

let btfProblem: string | null | undefined;

/**
 * Why the running kernel's BTF cannot be used (null when it can), cached. libbpf also looks for a
 * vmlinux image with BTF under /boot and /lib/modules when /sys/kernel/btf/vmlinux is missing.
 */
export function kernelBtfProblem(): string | null {
  if (btfProblem !== undefined) return btfProblem;
  try {
    Btf.vmlinux().close();
    btfProblem = null;
  } catch (err) {
    const detail = existsSync('/sys/kernel/btf/vmlinux')
      ? `/sys/kernel/btf/vmlinux is unreadable (${(err as Error).message})`
      : '/sys/kernel/btf/vmlinux does not exist';
    btfProblem =
      `kernel BTF missing: ${detail}. eBPF probes need a kernel built with CONFIG_DEBUG_INFO_BTF=y ` +
      '(Debian, Ubuntu, RHEL/Alma/Rocky, Amazon Linux, COS kernels have it since 5.x); on a kernel without it, ' +
      'install one that has it, or put a vmlinux with BTF at /boot/vmlinux-$(uname -r). ' +
      'procfs and netlink probes run without BTF.';
  }
  return btfProblem;
}

/** Runs `fn` with a temporary vmlinux BTF, freed afterwards. */
export function withVmlinuxBtf<T>(fn: (btf: Btf) => T): T {
  const btf = Btf.vmlinux();
  try {
    return fn(btf);
  } finally {
    btf.close();
  }
}

function kernelEnum(name: string, prefix: string): Map<number, string> {
  const key = `${name}\0${prefix}`;
  let m = enumCache.get(key);
  if (!m) {
    m = withVmlinuxBtf((btf) => btf.enumNames(name, prefix));
    enumCache.set(key, m);
  }
  return m;
}

/** Kernel drop reasons (`enum skb_drop_reason`), value → name without `SKB_DROP_REASON_`. */
export function dropReasonNames(): ReadonlyMap<number, string> {
  return kernelEnum('skb_drop_reason', 'SKB_DROP_REASON_');
}

/** Kernel TCP reset reasons (`enum sk_rst_reason`, Linux >= 6.10), value → name without `SK_RST_REASON_`. */
export function resetReasonNames(): ReadonlyMap<number, string> {
  return kernelEnum('sk_rst_reason', 'SK_RST_REASON_');
}

/** Any kernel enum, cached. */
export function kernelEnumNames(enumName: string, stripPrefix = ''): ReadonlyMap<number, string> {
  return kernelEnum(enumName, stripPrefix);
}

/** Name for a value, falling back to `UNKNOWN_<n>` (a reason newer than this kernel's BTF cannot occur). */
export function enumName(names: ReadonlyMap<number, string>, value: number): string {
  return names.get(value) ?? `UNKNOWN_${value}`;
}
