// Typed binding to the system libbpf (libbpf.so.1) and the few libc calls the runtime needs, through
// koffi. Everything native is declared here once; the rest of receiver/bpf uses these typed functions.
//
// - The library is loaded lazily by soname, with `PODNET_LIBBPF` (a path or soname) tried first; the
//   error lists every candidate tried and why it failed.
// - libbpf's print callback (`libbpf_set_print`) is routed into the pino logger (component `libbpf`) and
//   into an optional capture buffer, so an operation's libbpf/verifier log can be attached to its error.
// - Every failure becomes a `BpfError` carrying the operation, errno, the libbpf message
//   (`libbpf_strerror`) and the captured log.
import { getSystemErrorName } from 'node:util';
import koffi, { type KoffiFunc, type LibraryHandle } from 'koffi';
import { childLogger, type Logger } from '../log/logger.ts';

/** A native pointer as koffi 3 represents it (BigInt); `null` is NULL. */
export type Ptr = bigint;

const BTF_PRINT_WARN = 0;
const BTF_PRINT_INFO = 1;

/** libbpf's own error codes (libbpf.h `enum libbpf_errno`). */
const LIBBPF_ERRNO_NAMES: Record<number, string> = {
  4000: 'LIBBPF_ERRNO__LIBELF',
  4001: 'LIBBPF_ERRNO__FORMAT',
  4002: 'LIBBPF_ERRNO__KVERSION',
  4003: 'LIBBPF_ERRNO__ENDIAN',
  4004: 'LIBBPF_ERRNO__INTERNAL',
  4005: 'LIBBPF_ERRNO__RELOC',
  4006: 'LIBBPF_ERRNO__LOAD',
  4007: 'LIBBPF_ERRNO__VERIFY',
  4008: 'LIBBPF_ERRNO__PROG2BIG',
  4009: 'LIBBPF_ERRNO__KVER',
  4010: 'LIBBPF_ERRNO__PROGTYPE',
  4011: 'LIBBPF_ERRNO__WRNGPID',
  4012: 'LIBBPF_ERRNO__INVSEQ',
  4013: 'LIBBPF_ERRNO__NLPARSE',
};

/** A failed libbpf (or bpf syscall) operation. `errno` is positive. */
export class BpfError extends Error {
  /** What was attempted, e.g. `bpf_object__load(selftest)`. */
  readonly operation: string;
  readonly errno: number;
  /** `EPERM`, `LIBBPF_ERRNO__VERIFY`, ... when known. */
  readonly code: string | undefined;
  /** libbpf_strerror(errno). */
  readonly libbpfMessage: string;
  /** libbpf's log lines (including the verifier log) printed during the operation. */
  readonly log: string;
  /** Programs libbpf named as failing in the log (`prog 'x': failed to load`). */
  readonly programs: readonly string[];
  constructor(operation: string, errno: number, log = '', detail?: string) {
    const e = Math.abs(errno);
    const libbpfMessage = strerror(e);
    const verifier = verifierSummary(log);
    const msg = `${operation} failed: ${libbpfMessage} (errno ${e})${detail ? `: ${detail}` : ''}${
      verifier ? ` — verifier: ${verifier}` : ''
    }`;
    super(msg);
    this.name = 'BpfError';
    this.operation = operation;
    this.errno = e;
    this.code = LIBBPF_ERRNO_NAMES[e] ?? errnoName(e);
    this.libbpfMessage = libbpfMessage;
    this.log = log;
    this.programs = failingPrograms(log);
  }
}

function errnoName(e: number): string | undefined {
  try {
    return getSystemErrorName(-e);
  } catch {
    return undefined;
  }
}

/** Names of programs libbpf reported as failing (`prog 'x': failed to load`, `... failed to find ...`). */
export function failingPrograms(log: string): string[] {
  const out = new Set<string>();
  for (const m of log.matchAll(
    /prog '([^']+)': (?:failed|BPF program load failed|-- BEGIN PROG LOAD LOG)/g,
  )) {
    if (m[1]) out.add(m[1]);
  }
  return [...out];
}

/** The verifier's own error line(s) from a captured log (the lines just before `processed N insns`/END). */
export function verifierSummary(log: string): string {
  const begin = log.lastIndexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return '';
  const end = log.indexOf('-- END PROG LOAD LOG --', begin);
  const body = log
    .slice(begin + 25, end < 0 ? undefined : end)
    .split('\n')
    .map((l) => l.replace(/^libbpf: /, '').trim())
    .filter((l) => l && !/^prog '[^']+': /.test(l));
  // The error is the last line that is not the statistics trailer.
  const meaningful = body.filter((l) => !/^processed \d+ insns|^verification time|^stack depth/.test(l));
  return meaningful.slice(-2).join(' | ');
}

// ---------------------------------------------------------------------------------------------------
// Library loading

interface LoadedLibs {
  readonly bpf: LibraryHandle;
  readonly libc: LibraryHandle;
  readonly path: string;
}

let libs: LoadedLibs | undefined;

/** Where libbpf is looked for: `PODNET_LIBBPF` first (a path or soname), then the soname, then common paths. */
export function libbpfCandidates(): string[] {
  const out: string[] = [];
  const env = process.env['PODNET_LIBBPF'];
  if (env) out.push(env);
  out.push(
    'libbpf.so.1',
    '/usr/lib/x86_64-linux-gnu/libbpf.so.1',
    '/usr/lib/aarch64-linux-gnu/libbpf.so.1',
    '/usr/lib64/libbpf.so.1',
    '/usr/lib/libbpf.so.1',
  );
  return out;
}

/** Loads the first candidate that works; the error lists every candidate tried and why it failed. */
export function loadFirst(candidates: readonly string[]): { lib: LibraryHandle; path: string } {
  const tried: string[] = [];
  for (const c of candidates) {
    try {
      return { lib: koffi.load(c), path: c };
    } catch (err) {
      tried.push(`${c}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `cannot load libbpf (need libbpf.so.1 >= 1.0: Debian package libbpf1, or set PODNET_LIBBPF to its path). Tried:\n  ${tried.join('\n  ')}`,
  );
}

function loadLibbpf(): LoadedLibs {
  if (libs) return libs;
  const candidates = libbpfCandidates();
  const { lib, path } = loadFirst(candidates);
  if (process.env['PODNET_LIBBPF'] && path !== process.env['PODNET_LIBBPF']) {
    childLogger('bpf').warn(
      { wanted: process.env['PODNET_LIBBPF'], loaded: path },
      'PODNET_LIBBPF could not be loaded; using the system libbpf',
    );
  }
  libs = { bpf: lib, libc: koffi.load('libc.so.6'), path };
  return libs;
}

// ---------------------------------------------------------------------------------------------------
// Declarations

function declare() {
  const { bpf, libc } = loadLibbpf();
  const f = (lib: LibraryHandle, decl: string) => lib.func(decl);
  const printProto = koffi.proto('int podnet_libbpf_print_fn(int level, void *fmt, void *ap)');
  // The head of struct bpf_object_open_opts; `sz` = 16 tells libbpf only object_name is set.
  koffi.struct('podnet_open_opts', { sz: 'size_t', object_name: 'const char *' });
  return {
    printProto,
    // object
    bpf_object__open_file: f(bpf, 'void *bpf_object__open_file(const char *path, void *opts)') as (
      path: string,
      opts: null,
    ) => Ptr | null,
    bpf_object__open_mem: f(
      bpf,
      'void *bpf_object__open_mem(const void *buf, size_t sz, const podnet_open_opts *opts)',
    ) as (buf: Uint8Array, sz: number, opts: { sz: number; object_name: string } | null) => Ptr | null,
    bpf_object__load: f(bpf, 'int bpf_object__load(void *obj)') as (obj: Ptr) => number,
    bpf_object__close: f(bpf, 'void bpf_object__close(void *obj)') as (obj: Ptr) => void,
    bpf_object__name: f(bpf, 'const char *bpf_object__name(void *obj)') as (obj: Ptr) => string,
    bpf_object__btf: f(bpf, 'void *bpf_object__btf(void *obj)') as (obj: Ptr) => Ptr | null,
    // programs
    bpf_object__next_program: f(bpf, 'void *bpf_object__next_program(void *obj, void *prev)') as (
      obj: Ptr,
      prev: Ptr | null,
    ) => Ptr | null,
    bpf_program__name: f(bpf, 'const char *bpf_program__name(void *p)') as (p: Ptr) => string,
    bpf_program__section_name: f(bpf, 'const char *bpf_program__section_name(void *p)') as (p: Ptr) => string,
    bpf_program__set_autoload: f(bpf, 'int bpf_program__set_autoload(void *p, bool autoload)') as (
      p: Ptr,
      on: boolean,
    ) => number,
    bpf_program__autoload: f(bpf, 'bool bpf_program__autoload(void *p)') as (p: Ptr) => boolean,
    bpf_program__type: f(bpf, 'int bpf_program__type(void *p)') as (p: Ptr) => number,
    bpf_program__fd: f(bpf, 'int bpf_program__fd(void *p)') as (p: Ptr) => number,
    bpf_program__attach: f(bpf, 'void *bpf_program__attach(void *p)') as (p: Ptr) => Ptr | null,
    bpf_link__destroy: f(bpf, 'int bpf_link__destroy(void *l)') as (l: Ptr) => number,
    bpf_link__fd: f(bpf, 'int bpf_link__fd(void *l)') as (l: Ptr) => number,
    // maps
    bpf_object__next_map: f(bpf, 'void *bpf_object__next_map(void *obj, void *prev)') as (
      obj: Ptr,
      prev: Ptr | null,
    ) => Ptr | null,
    bpf_map__name: f(bpf, 'const char *bpf_map__name(void *m)') as (m: Ptr) => string,
    bpf_map__fd: f(bpf, 'int bpf_map__fd(void *m)') as (m: Ptr) => number,
    bpf_map__type: f(bpf, 'int bpf_map__type(void *m)') as (m: Ptr) => number,
    bpf_map__key_size: f(bpf, 'uint32_t bpf_map__key_size(void *m)') as (m: Ptr) => number,
    bpf_map__value_size: f(bpf, 'uint32_t bpf_map__value_size(void *m)') as (m: Ptr) => number,
    bpf_map__max_entries: f(bpf, 'uint32_t bpf_map__max_entries(void *m)') as (m: Ptr) => number,
    bpf_map__set_max_entries: f(bpf, 'int bpf_map__set_max_entries(void *m, uint32_t n)') as (
      m: Ptr,
      n: number,
    ) => number,
    bpf_map__initial_value: f(bpf, 'void *bpf_map__initial_value(void *m, _Out_ size_t *psize)') as (
      m: Ptr,
      psize: [number],
    ) => Ptr | null,
    // map syscalls (return -errno)
    bpf_map_lookup_elem: f(bpf, 'int bpf_map_lookup_elem(int fd, const void *key, void *value)') as (
      fd: number,
      key: Uint8Array,
      value: Uint8Array,
    ) => number,
    bpf_map_update_elem: f(
      bpf,
      'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
    ) as (fd: number, key: Uint8Array, value: Uint8Array, flags: number) => number,
    bpf_map_delete_elem: f(bpf, 'int bpf_map_delete_elem(int fd, const void *key)') as (
      fd: number,
      key: Uint8Array,
    ) => number,
    bpf_map_get_next_key: f(bpf, 'int bpf_map_get_next_key(int fd, const void *key, void *next_key)') as (
      fd: number,
      key: Uint8Array | null,
      next: Uint8Array,
    ) => number,
    bpf_map_lookup_batch: f(
      bpf,
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, void *opts)',
    ) as (
      fd: number,
      inBatch: Uint8Array | null,
      outBatch: Uint8Array,
      keys: Uint8Array,
      values: Uint8Array,
      count: [number],
      opts: null,
    ) => number,
    bpf_enable_stats: f(bpf, 'int bpf_enable_stats(int type)') as (type: number) => number,
    bpf_obj_get_info_by_fd: f(
      bpf,
      'int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *info_len)',
    ) as (fd: number, info: Uint8Array, len: [number]) => number,
    // misc
    libbpf_set_print: f(bpf, 'void *libbpf_set_print(podnet_libbpf_print_fn *fn)') as (
      fn: bigint | null,
    ) => Ptr | null,
    libbpf_strerror: f(bpf, 'int libbpf_strerror(int err, _Out_ char *buf, size_t size)') as (
      err: number,
      buf: Buffer,
      size: number,
    ) => number,
    libbpf_probe_bpf_prog_type: f(bpf, 'int libbpf_probe_bpf_prog_type(int prog_type, void *opts)') as (
      type: number,
      opts: null,
    ) => number,
    libbpf_major_version: f(bpf, 'uint32_t libbpf_major_version(void)') as () => number,
    libbpf_minor_version: f(bpf, 'uint32_t libbpf_minor_version(void)') as () => number,
    // BTF
    btf__load_vmlinux_btf: f(bpf, 'void *btf__load_vmlinux_btf(void)') as () => Ptr | null,
    btf__parse: f(bpf, 'void *btf__parse(const char *path, void *btf_ext)') as (
      path: string,
      ext: null,
    ) => Ptr | null,
    btf__find_by_name_kind: f(
      bpf,
      'int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)',
    ) as (btf: Ptr, name: string, kind: number) => number,
    btf__type_by_id: f(bpf, 'void *btf__type_by_id(void *btf, uint32_t id)') as (
      btf: Ptr,
      id: number,
    ) => Ptr | null,
    btf__type_cnt: f(bpf, 'uint32_t btf__type_cnt(void *btf)') as (btf: Ptr) => number,
    btf__name_by_offset: f(bpf, 'const char *btf__name_by_offset(void *btf, uint32_t off)') as (
      btf: Ptr,
      off: number,
    ) => string | null,
    btf__resolve_size: f(bpf, 'int64_t btf__resolve_size(void *btf, uint32_t id)') as (
      btf: Ptr,
      id: number,
    ) => number | bigint,
    btf__free: f(bpf, 'void btf__free(void *btf)') as (btf: Ptr) => void,
    // libc
    vsnprintf: f(libc, 'int vsnprintf(void *buf, size_t n, void *fmt, void *ap)') as (
      buf: Buffer,
      n: number,
      fmt: Ptr,
      ap: Ptr,
    ) => number,
    mmap: f(libc, 'void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)') as (
      addr: null,
      len: number,
      prot: number,
      flags: number,
      fd: number,
      off: number,
    ) => Ptr | null,
    munmap: f(libc, 'int munmap(void *addr, size_t len)') as (addr: Ptr, len: number) => number,
    epoll_create1: f(libc, 'int epoll_create1(int flags)') as (flags: number) => number,
    epoll_ctl: f(libc, 'int epoll_ctl(int epfd, int op, int fd, void *ev)') as (
      epfd: number,
      op: number,
      fd: number,
      ev: Uint8Array,
    ) => number,
    epoll_wait: f(libc, 'int epoll_wait(int epfd, void *events, int maxevents, int timeout)') as KoffiFunc<
      (epfd: number, events: Uint8Array, max: number, timeout: number) => number
    >,
    eventfd: f(libc, 'int eventfd(unsigned int initval, int flags)') as (
      init: number,
      flags: number,
    ) => number,
    write: f(libc, 'intptr_t write(int fd, const void *buf, size_t n)') as (
      fd: number,
      buf: Uint8Array,
      n: number,
    ) => number,
    close: f(libc, 'int close(int fd)') as (fd: number) => number,
    sysconf: f(libc, 'long sysconf(int name)') as (name: number) => number,
    strerror: f(libc, 'const char *strerror(int errnum)') as (e: number) => string,
  };
}

export type LibbpfApi = ReturnType<typeof declare>;

let api: LibbpfApi | undefined;

/** The libbpf + libc functions (loads libbpf on first use and installs the print bridge). */
export function libbpf(): LibbpfApi {
  if (!api) {
    api = declare();
    installPrint(api);
  }
  return api;
}

/** Where libbpf was loaded from and its version, e.g. `{ path: 'libbpf.so.1', version: '1.1' }`. */
export function libbpfInfo(): { path: string; version: string } {
  const a = libbpf();
  return { path: loadLibbpf().path, version: `${a.libbpf_major_version()}.${a.libbpf_minor_version()}` };
}

// ---------------------------------------------------------------------------------------------------
// Print bridge: libbpf log → pino + capture buffer

// Module-level on purpose: libbpf's print callback is process-wide state (libbpf_set_print), shared by
// every object any probe opens, so its logger cannot belong to one of them.
const libbpfLog: Logger = childLogger('libbpf');
const printBuf = Buffer.alloc(16384);
let printCallback: bigint | undefined; // kept referenced forever: libbpf may call it at any time
const captures: string[][] = [];

function installPrint(a: LibbpfApi): void {
  const cb = (level: number, fmt: Ptr, ap: Ptr): number => {
    try {
      const n = a.vsnprintf(printBuf, printBuf.length, fmt, ap);
      if (n <= 0) return 0;
      const text = printBuf.toString('utf8', 0, Math.min(n, printBuf.length - 1));
      for (const c of captures) c.push(text);
      const line = text.replace(/\n$/, '');
      if (level === BTF_PRINT_WARN) libbpfLog.warn(line);
      else if (level === BTF_PRINT_INFO) libbpfLog.debug(line);
      else libbpfLog.trace(line);
    } catch {
      // never throw into C
    }
    return 0;
  };
  printCallback = koffi.register(cb, koffi.pointer(a.printProto));
  a.libbpf_set_print(printCallback);
}

/** Runs `fn` while collecting everything libbpf prints; returns its result and the log. */
export function captureLog<T>(fn: () => T): { result: T; log: string } {
  const buf: string[] = [];
  captures.push(buf);
  try {
    const result = fn();
    return { result, log: buf.join('') };
  } finally {
    const i = captures.indexOf(buf);
    if (i >= 0) captures.splice(i, 1);
  }
}

/** libbpf_strerror (knows libbpf's 4000+ codes too). */
export function strerror(errno: number): string {
  const a = libbpf();
  const buf = Buffer.alloc(256);
  a.libbpf_strerror(Math.abs(errno), buf, buf.length);
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end) || `errno ${errno}`;
}

/** Throws a BpfError when an int-returning libbpf call returned < 0. */
export function check(operation: string, ret: number, log = ''): number {
  if (ret < 0) throw new BpfError(operation, -ret, log);
  return ret;
}
