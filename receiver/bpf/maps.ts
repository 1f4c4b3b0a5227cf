// Reading and maintaining loaded BPF maps: batch lookup for HASH / PERCPU_HASH (and arrays), per-CPU
// sums, update, delete (stale keys), and a get-next-key fallback for kernels or map types without batch
// ops. Keys and values are raw bytes (Buffers); decoding belongs to the probe that owns the layout.
import { readFileSync } from 'node:fs';
import { BpfError, check, libbpf } from './libbpf.ts';

export const BPF_MAP_TYPE = {
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  STACK_TRACE: 7,
  CGROUP_ARRAY: 8,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  RINGBUF: 27,
} as const;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

const ENOENT = 2;

let possibleCpuCount: number | undefined;

/** Number of possible CPUs (sizes per-CPU values), from /sys/devices/system/cpu/possible ("0-1,4"). */
export function possibleCpus(): number {
  if (possibleCpuCount === undefined) {
    const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    possibleCpuCount = parseCpuList(text);
  }
  return possibleCpuCount;
}

/** Count of CPUs in a kernel cpu list like `0-3,8,10-11` (the highest index + 1, as the kernel sizes). */
export function parseCpuList(text: string): number {
  let max = -1;
  for (const part of text.split(',')) {
    const [a, b] = part.split('-');
    const hi = Number(b ?? a);
    if (!Number.isInteger(hi)) throw new Error(`cannot parse cpu list '${text}'`);
    if (hi > max) max = hi;
  }
  return max + 1;
}

export interface MapEntry {
  readonly key: Buffer;
  /** For per-CPU maps: `possibleCpus() × round8(valueSize)` bytes, CPU 0 first. */
  readonly value: Buffer;
}

export interface SummedEntry {
  readonly key: Buffer;
  /** The value read as consecutive u64 fields, each summed over CPUs. */
  readonly values: number[];
}

export interface MapInfo {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/** A loaded map, owned by its BpfCollection (the fd closes with the collection). */
export class BpfMap {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** Bytes of one value as the syscalls see it (per-CPU maps: all CPUs). */
  readonly valueBytes: number;
  #batchSupported = true;

  constructor(info: MapInfo) {
    this.name = info.name;
    this.fd = info.fd;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.valueBytes = this.perCpu ? possibleCpus() * Math.ceil(info.valueSize / 8) * 8 : info.valueSize;
  }

  get perCpu(): boolean {
    return (
      this.type === BPF_MAP_TYPE.PERCPU_HASH ||
      this.type === BPF_MAP_TYPE.PERCPU_ARRAY ||
      this.type === BPF_MAP_TYPE.LRU_PERCPU_HASH
    );
  }

  #key(key: Uint8Array): Uint8Array {
    if (key.length !== this.keySize) {
      throw new RangeError(`map ${this.name}: key is ${key.length} bytes, expected ${this.keySize}`);
    }
    return key;
  }

  /** The value for `key`, or null when absent. */
  lookup(key: Uint8Array): Buffer | null {
    const value = Buffer.alloc(this.valueBytes);
    const r = libbpf().bpf_map_lookup_elem(this.fd, this.#key(key), value);
    if (r === -ENOENT) return null;
    check(`bpf_map_lookup_elem(${this.name})`, r);
    return value;
  }

  /** flags: BPF_ANY (default), BPF_NOEXIST, BPF_EXIST. Per-CPU maps take a value per CPU. */
  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    if (value.length !== this.valueBytes) {
      throw new RangeError(`map ${this.name}: value is ${value.length} bytes, expected ${this.valueBytes}`);
    }
    check(
      `bpf_map_update_elem(${this.name})`,
      libbpf().bpf_map_update_elem(this.fd, this.#key(key), value, flags),
    );
  }

  /** Deletes `key`; false when it was not there. */
  delete(key: Uint8Array): boolean {
    const r = libbpf().bpf_map_delete_elem(this.fd, this.#key(key));
    if (r === -ENOENT) return false;
    check(`bpf_map_delete_elem(${this.name})`, r);
    return true;
  }

  /** Deletes every key for which `stale(key)` is true (e.g. netns of pods that are gone). Returns the count. */
  deleteWhere(stale: (key: Buffer) => boolean): number {
    let n = 0;
    for (const key of this.keys()) if (stale(key) && this.delete(key)) n++;
    return n;
  }

  /** All keys through get_next_key (collected first, so deleting while iterating is safe). */
  keys(): Buffer[] {
    const a = libbpf();
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const r = a.bpf_map_get_next_key(this.fd, prev, next);
      if (r === -ENOENT) break;
      check(`bpf_map_get_next_key(${this.name})`, r);
      out.push(next);
      prev = next;
      if (out.length > this.maxEntries * 2 + 16) break; // keys churning under us: stop
    }
    return out;
  }

  /**
   * Every entry. Uses bpf_map_lookup_batch (one syscall per `batchSize` entries); falls back to
   * get_next_key + lookup when the kernel or map type has no batch support (EINVAL / ENOTSUPP).
   */
  entries(batchSize = 1024): MapEntry[] {
    if (this.#batchSupported) {
      try {
        return this.#batchEntries(batchSize);
      } catch (err) {
        const e = err as BpfError;
        if (!(e instanceof BpfError) || ![22, 95, 524].includes(e.errno)) throw err;
        this.#batchSupported = false; // EINVAL / EOPNOTSUPP / ENOTSUPP
      }
    }
    const out: MapEntry[] = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) out.push({ key, value });
    }
    return out;
  }

  #batchEntries(batchSize: number): MapEntry[] {
    const a = libbpf();
    let n = Math.max(1, Math.min(batchSize, this.maxEntries));
    const out: MapEntry[] = [];
    const inBatch = Buffer.alloc(8);
    const outBatch = Buffer.alloc(8);
    let first = true;
    for (;;) {
      const keys = Buffer.alloc(n * this.keySize);
      const values = Buffer.alloc(n * this.valueBytes);
      const count: [number] = [n];
      const r = a.bpf_map_lookup_batch(this.fd, first ? null : inBatch, outBatch, keys, values, count, null);
      if (r < 0 && r !== -ENOENT) {
        if (r === -28 && n < this.maxEntries) {
          // ENOSPC: a hash bucket holds more entries than `count`; retry this batch larger
          n = Math.min(this.maxEntries, n * 4);
          continue;
        }
        throw new BpfError(`bpf_map_lookup_batch(${this.name})`, -r);
      }
      const got = count[0];
      for (let i = 0; i < got; i++) {
        out.push({
          key: Buffer.from(keys.subarray(i * this.keySize, (i + 1) * this.keySize)),
          value: Buffer.from(values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes)),
        });
      }
      if (r === -ENOENT) break; // the final batch still carries `count` valid entries
      outBatch.copy(inBatch);
      first = false;
    }
    return out;
  }

  /**
   * Sums a value of consecutive u64 fields over CPUs (per-CPU maps) or reads it (others).
   * `fields` defaults to valueSize / 8.
   */
  sumU64(value: Uint8Array, fields = Math.floor(this.valueSize / 8)): number[] {
    const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const out = new Array<number>(fields).fill(0);
    const stride = Math.ceil(this.valueSize / 8) * 8;
    const cpus = this.perCpu ? possibleCpus() : 1;
    for (let c = 0; c < cpus; c++) {
      for (let f = 0; f < fields; f++) {
        out[f] = (out[f] ?? 0) + Number(dv.getBigUint64(c * stride + f * 8, true));
      }
    }
    return out;
  }

  /** entries() with each value summed over CPUs as u64 fields: the usual read of kernel counters. */
  entriesSummed(batchSize = 1024): SummedEntry[] {
    return this.entries(batchSize).map((e) => ({ key: e.key, values: this.sumU64(e.value) }));
  }

  /** Value of a u64 at `index` of an ARRAY/PERCPU_ARRAY of u64, summed over CPUs. */
  arrayU64(index: number): number {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const v = this.lookup(key);
    return v ? (this.sumU64(v, 1)[0] ?? 0) : 0;
  }
}
