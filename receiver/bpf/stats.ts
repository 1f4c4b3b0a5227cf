// Kernel-side cost of programs: BPF_STATS_RUN_TIME (bpf_enable_stats) turns on run_time_ns / run_cnt
// accounting for as long as the returned fd is open; programInfo() reads them with
// bpf_obj_get_info_by_fd. The struct bpf_prog_info layout is taken from the kernel's BTF.
import { withVmlinuxBtf } from './btf.ts';
import { BpfError, libbpf } from './libbpf.ts';

const BPF_STATS_RUN_TIME = 0;

export interface RunTimeStats extends Disposable {
  readonly fd: number;
  close(): void;
}

/** Enables run-time statistics for all programs until close() (needs CAP_SYS_ADMIN). */
export function enableRunTimeStats(): RunTimeStats {
  const a = libbpf();
  const fd = a.bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) throw new BpfError('bpf_enable_stats(BPF_STATS_RUN_TIME)', -fd);
  let open = true;
  const close = () => {
    if (open) a.close(fd);
    open = false;
  };
  return { fd, close, [Symbol.dispose]: close };
}

export interface ProgramInfo {
  readonly id: number;
  readonly type: number;
  readonly name: string;
  readonly runTimeNs: number;
  readonly runCount: number;
  readonly recursionMisses: number;
}

interface InfoLayout {
  size: number;
  type: number;
  id: number;
  name: number;
  runTimeNs: number;
  runCnt: number;
  recursionMisses: number;
}

let layout: InfoLayout | undefined;

function infoLayout(): InfoLayout {
  if (!layout) {
    layout = withVmlinuxBtf((btf) => {
      const s = btf.structLayout('bpf_prog_info');
      const off = (f: string) => {
        const x = s.fields.get(f);
        if (!x) throw new Error(`struct bpf_prog_info has no ${f} on this kernel`);
        return x.offset;
      };
      return {
        size: s.size,
        type: off('type'),
        id: off('id'),
        name: off('name'),
        runTimeNs: off('run_time_ns'),
        runCnt: off('run_cnt'),
        recursionMisses: s.fields.get('recursion_misses')?.offset ?? -1,
      };
    });
  }
  return layout;
}

/** id, name and run statistics of a loaded program (by fd). */
export function programInfo(progFd: number): ProgramInfo {
  const l = infoLayout();
  const buf = Buffer.alloc(l.size);
  const len: [number] = [l.size];
  const r = libbpf().bpf_obj_get_info_by_fd(progFd, buf, len);
  if (r < 0) throw new BpfError(`bpf_obj_get_info_by_fd(${progFd})`, -r);
  const nameEnd = buf.indexOf(0, l.name);
  return {
    id: buf.readUInt32LE(l.id),
    type: buf.readUInt32LE(l.type),
    name: buf.toString('utf8', l.name, nameEnd < 0 || nameEnd > l.name + 16 ? l.name + 16 : nameEnd),
    runTimeNs: Number(buf.readBigUInt64LE(l.runTimeNs)),
    runCount: Number(buf.readBigUInt64LE(l.runCnt)),
    recursionMisses: l.recursionMisses >= 0 ? Number(buf.readBigUInt64LE(l.recursionMisses)) : 0,
  };
}
