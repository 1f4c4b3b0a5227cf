// What user space shares with one compiled BPF object, read from the object's own BTF (as cilium/ebpf's
// bpf2go does): its programs, its maps with their key and value types, its .rodata tunables, and the
// byte layout of every struct it exchanges — map keys and values, and the ring records anchored with
// PN_LAYOUT() (probes/include/pn_event.h; clang emits BTF only for the types of globals, maps and
// program arguments, never for a record built in a local).
import { BTF_KIND, Btf, type BtfType } from '../../receiver/bpf/btf.ts';

/**
 * How a field is read: an integer (8 bytes → bigint; `bigEndian` for the kernel's network-order typedefs
 * __be16 / __be32 / __be64), a float, a NUL-terminated char array, or not at all.
 */
export type Reader =
  | {
      readonly kind: 'int';
      readonly size: 1 | 2 | 4 | 8;
      readonly signed: boolean;
      readonly bigEndian?: true;
    }
  | { readonly kind: 'float'; readonly size: 4 | 8 }
  | { readonly kind: 'chars'; readonly length: number };

export interface FieldModel {
  readonly name: string;
  /** Byte offset from the start of the struct (anonymous members are flattened, as C reads them). */
  readonly offset: number;
  readonly size: number;
  /** C spelling, for comments: `__u32`, `char[16]`, `struct pn_tuple`. */
  readonly ctype: string;
  /** undefined: offset only (nested structs, unions, non-char arrays). */
  readonly reader: Reader | undefined;
}

export interface StructModel {
  readonly name: string;
  readonly kind: 'struct' | 'union';
  readonly size: number;
  readonly fields: readonly FieldModel[];
}

export interface MapModel {
  readonly name: string;
  /** `percpu_hash`, `ringbuf`, ... (BPF_MAP_TYPE_* in lower case). */
  readonly type: string;
  readonly key: string;
  readonly value: string;
}

export interface ObjectModel {
  readonly programs: readonly string[];
  readonly maps: readonly MapModel[];
  readonly rodata: readonly string[];
  /** By name; shared `pn_*` structs of probes/include included. */
  readonly structs: ReadonlyMap<string, StructModel>;
}

/** The prefix of the .rodata anchors PN_LAYOUT() declares. */
export const ANCHOR_PREFIX = 'pn_layout_';

// include/uapi/linux/bpf.h, enum bpf_map_type
const MAP_TYPES = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
];

const BTF_INT_SIGNED = 1;
/** The kernel's network-byte-order integer typedefs (linux/types.h). */
const BIG_ENDIAN_TYPEDEFS = new Set(['__be16', '__be32', '__be64']);
const BTF_INT_CHAR = 2;
const FUNC_LINKAGE_GLOBAL = 1;

const MODIFIERS = new Set<number>([
  BTF_KIND.TYPEDEF,
  BTF_KIND.CONST,
  BTF_KIND.VOLATILE,
  BTF_KIND.RESTRICT,
  BTF_KIND.TYPE_TAG,
]);

class Reading {
  readonly btf: Btf;
  readonly file: string;
  readonly structs = new Map<string, StructModel>();

  constructor(btf: Btf, file: string) {
    this.btf = btf;
    this.file = file;
  }

  /** C spelling of a type: the first typedef name, else `struct x`, `char[16]`, `void *`. */
  ctype(id: number): string {
    if (id === 0) return 'void';
    const t = this.btf.type(id);
    if (t.kind === BTF_KIND.TYPEDEF || t.kind === BTF_KIND.INT || t.kind === BTF_KIND.FLOAT) return t.name;
    if (MODIFIERS.has(t.kind)) return this.ctype(t.sizeOrType);
    if (t.kind === BTF_KIND.PTR) return `${this.ctype(t.sizeOrType)} *`;
    if (t.kind === BTF_KIND.ARRAY)
      return `${this.ctype(t.view.getUint32(12, true))}[${t.view.getUint32(20, true)}]`;
    if (t.kind === BTF_KIND.STRUCT) return `struct ${t.name || '(anon)'}`;
    if (t.kind === BTF_KIND.UNION) return `union ${t.name || '(anon)'}`;
    if (t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) return `enum ${t.name || '(anon)'}`;
    return `kind${t.kind}`;
  }

  /** A typedef named __be16 / __be32 / __be64 on the way from `id` to its base type. */
  networkOrder(id: number): boolean {
    for (let t = this.btf.type(id); MODIFIERS.has(t.kind); t = this.btf.type(t.sizeOrType)) {
      if (t.kind === BTF_KIND.TYPEDEF && BIG_ENDIAN_TYPEDEFS.has(t.name)) return true;
    }
    return false;
  }

  reader(id: number): Reader | undefined {
    const t = this.btf.resolve(id);
    switch (t.kind) {
      case BTF_KIND.INT: {
        const enc = (t.view.getUint32(12, true) >>> 24) & 0x0f;
        const r = { kind: 'int', size: intSize(t), signed: (enc & BTF_INT_SIGNED) !== 0 } as const;
        return this.networkOrder(id) && r.size > 1 ? { ...r, bigEndian: true } : r;
      }
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64:
        return { kind: 'int', size: intSize(t), signed: t.kflag };
      case BTF_KIND.PTR:
        return { kind: 'int', size: 8, signed: false };
      case BTF_KIND.FLOAT:
        return { kind: 'float', size: t.sizeOrType === 4 ? 4 : 8 };
      case BTF_KIND.ARRAY: {
        const elem = this.btf.resolve(t.view.getUint32(12, true));
        const enc = elem.kind === BTF_KIND.INT ? (elem.view.getUint32(12, true) >>> 24) & 0x0f : 0;
        const isChar =
          elem.kind === BTF_KIND.INT && elem.sizeOrType === 1 && (enc & BTF_INT_CHAR || elem.name === 'char');
        return isChar ? { kind: 'chars', length: t.view.getUint32(20, true) } : undefined;
      }
      default:
        return undefined;
    }
  }

  /** Layout of a named struct/union and, recursively, of the named structs it contains. */
  struct(id: number): StructModel {
    const t = this.btf.resolve(id);
    const kind = t.kind === BTF_KIND.UNION ? 'union' : 'struct';
    if (t.kind !== BTF_KIND.STRUCT && t.kind !== BTF_KIND.UNION) {
      throw new Error(`${this.file}: type ${this.ctype(id)} is not a struct or union`);
    }
    if (!t.name) throw new Error(`${this.file}: an anonymous ${kind} cannot be named in TypeScript`);
    const known = this.structs.get(t.name);
    if (known) return known;
    const fields: FieldModel[] = [];
    this.#members(t, t.name, 0, fields);
    const model: StructModel = { name: t.name, kind, size: t.sizeOrType, fields };
    this.structs.set(t.name, model);
    return model;
  }

  #members(t: BtfType, owner: string, baseBits: number, out: FieldModel[]): void {
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 12;
      const name = this.btf.name(t.view.getUint32(o, true));
      const typeId = t.view.getUint32(o + 4, true);
      const raw = t.view.getUint32(o + 8, true);
      const bits = baseBits + (t.kflag ? raw & 0xffffff : raw);
      const bitSize = t.kflag ? raw >>> 24 : 0;
      const inner = this.btf.resolve(typeId);
      const aggregate = inner.kind === BTF_KIND.STRUCT || inner.kind === BTF_KIND.UNION;
      if (!name && aggregate) {
        this.#members(inner, owner, bits, out);
        continue;
      }
      if (bitSize || bits % 8 !== 0) {
        throw new Error(
          `${this.file}: ${owner}.${name} is a bitfield; give shared layouts whole-byte fields`,
        );
      }
      if (aggregate && inner.name) this.struct(typeId);
      out.push({
        name,
        offset: bits / 8,
        size: this.btf.sizeOf(typeId),
        ctype: this.ctype(typeId),
        reader: this.reader(typeId),
      });
    }
  }

  /** The target of a map-definition member `int (*type)[N]` / `T *key`. */
  pointee(id: number): BtfType {
    const p = this.btf.resolve(id);
    if (p.kind !== BTF_KIND.PTR) throw new Error(`${this.file}: map definition member is not a pointer`);
    return this.btf.type(p.sizeOrType);
  }
}

function intSize(t: BtfType): 1 | 2 | 4 | 8 {
  const s = t.sizeOrType;
  if (s === 1 || s === 2 || s === 4 || s === 8) return s;
  throw new Error(`integer type ${t.name} of ${s} bytes has no DataView reader`);
}

function datasecVars(btf: Btf, t: BtfType): BtfType[] {
  const out: BtfType[] = [];
  for (let i = 0; i < t.vlen; i++) out.push(btf.type(t.view.getUint32(12 + i * 12, true)));
  return out;
}

/** Reads the model of one compiled object (`path` to a `.bpf.o`). */
export function readObject(path: string): ObjectModel {
  using btf = Btf.fromFile(path);
  const r = new Reading(btf, path);
  const programs: string[] = [];
  const maps: MapModel[] = [];
  const rodata: string[] = [];
  const anchors: number[] = [];
  const n = btf.typeCount();
  for (let id = 1; id < n; id++) {
    const t = btf.type(id);
    if (t.kind === BTF_KIND.FUNC && t.vlen === FUNC_LINKAGE_GLOBAL) programs.push(t.name);
    if (t.kind === BTF_KIND.VAR && t.name.startsWith(ANCHOR_PREFIX)) anchors.push(id);
    if (t.kind !== BTF_KIND.DATASEC) continue;
    if (t.name === '.maps') {
      for (const v of datasecVars(btf, t)) maps.push(mapModel(r, v));
    } else if (t.name === '.rodata') {
      for (const v of datasecVars(btf, t)) if (!v.name.startsWith(ANCHOR_PREFIX)) rodata.push(v.name);
    }
  }
  for (const id of anchors) {
    const v = btf.type(id);
    const ptr = btf.resolve(v.sizeOrType);
    if (ptr.kind !== BTF_KIND.PTR) throw new Error(`${path}: ${v.name} is not a PN_LAYOUT() pointer`);
    const s = r.struct(ptr.sizeOrType);
    if (`${ANCHOR_PREFIX}${s.name}` !== v.name)
      throw new Error(`${path}: ${v.name} anchors struct ${s.name}`);
  }
  const sort = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    programs: programs.sort(sort),
    maps: maps.sort((a, b) => sort(a.name, b.name)),
    rodata: rodata.sort(sort),
    structs: new Map([...r.structs].sort(([a], [b]) => sort(a, b))),
  };
}

function mapModel(r: Reading, v: BtfType): MapModel {
  const def = r.btf.resolve(v.sizeOrType);
  let type = 'unspec';
  let key = '';
  let value = '';
  for (let i = 0; i < def.vlen; i++) {
    const o = 12 + i * 12;
    const member = r.btf.name(def.view.getUint32(o, true));
    const typeId = def.view.getUint32(o + 4, true);
    if (member === 'type') {
      const arr = r.pointee(typeId);
      const n = arr.view.getUint32(20, true);
      type = MAP_TYPES[n] ?? `type_${n}`;
    } else if (member === 'key' || member === 'value') {
      const target = r.pointee(typeId);
      const resolved = r.btf.resolve(target.id);
      if ((resolved.kind === BTF_KIND.STRUCT || resolved.kind === BTF_KIND.UNION) && resolved.name) {
        r.struct(target.id);
      }
      if (member === 'key') key = r.ctype(target.id);
      else value = r.ctype(target.id);
    }
  }
  return { name: v.name, type, key, value };
}
