// Opening a BPF object with libbpf and walking its programs and maps: the raw handle both the spec
// (reading an ELF without the kernel) and the loaded collection use, in its own file so that object.ts
// and load-plan.ts share it.
import koffi from 'koffi';
import { BpfError, captureLog, libbpf, type Ptr } from './libbpf.ts';

export type Source = { kind: 'file'; path: string } | { kind: 'mem'; bytes: Uint8Array };

export function openObject(source: Source, name: string): Ptr {
  const a = libbpf();
  const { result, log } = captureLog(() =>
    source.kind === 'file'
      ? a.bpf_object__open_file(source.path, null)
      : a.bpf_object__open_mem(source.bytes, source.bytes.length, { sz: 16, object_name: name }),
  );
  if (!result) throw new BpfError(`bpf_object__open(${name})`, koffi.errno() || 22, log);
  return result;
}

export function* programPtrs(obj: Ptr): Generator<Ptr> {
  const a = libbpf();
  let p: Ptr | null = null;
  for (;;) {
    p = a.bpf_object__next_program(obj, p);
    if (!p) return;
    yield p;
  }
}

export function* mapPtrs(obj: Ptr): Generator<Ptr> {
  const a = libbpf();
  let m: Ptr | null = null;
  for (;;) {
    m = a.bpf_object__next_map(obj, m);
    if (!m) return;
    yield m;
  }
}

export function findMap(obj: Ptr, pred: (name: string) => boolean): Ptr | null {
  const a = libbpf();
  for (const m of mapPtrs(obj)) if (pred(a.bpf_map__name(m))) return m;
  return null;
}

export function isRodataMap(name: string): boolean {
  return name.endsWith('.rodata');
}
