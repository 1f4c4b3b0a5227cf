// The eBPF runtime: libbpf over koffi. See receiver/bpf/README.md.

export type { FieldLayout, StructLayout, VarLayout } from './btf.ts';
export {
  BTF_KIND,
  Btf,
  dropReasonNames,
  enumName,
  kernelEnumNames,
  resetReasonNames,
  withVmlinuxBtf,
} from './btf.ts';
export type { BpfCapability } from './caps.ts';
export {
  BPF_CAPABILITY_NEEDS,
  BpfCapabilityError,
  bpfCapabilityProblem,
  missingBpfCapabilities,
} from './caps.ts';
export type { EventHeader } from './events.ts';
export { EVENT_HEADER_SIZE, ipString, monotonicToUnixNano, readEventHeader } from './events.ts';
export type { Hook, HookCheck, HookKind } from './hooks.ts';
export { checkHook, ensureTracefs, parseSection, progTypeAllowed } from './hooks.ts';
export { Kallsyms, kallsyms } from './kallsyms.ts';
export { BpfError, libbpfInfo } from './libbpf.ts';
export { closeAll, installShutdownHandlers, openResources } from './lifecycle.ts';
export type { MapEntry, SummedEntry } from './maps.ts';
export { BPF_ANY, BPF_EXIST, BPF_MAP_TYPE, BPF_NOEXIST, BpfMap, possibleCpus } from './maps.ts';
export type { CollectionStatus, LoadOptions, ProgramOptions, ProgramState, ProgramStatus } from './object.ts';
export { BpfCollection, BpfProgram, BpfSpec } from './object.ts';
export type { RingReaderOptions, RingRecordHandler, RingStats } from './ringbuf.ts';
export { openEventRing, RingReader } from './ringbuf.ts';
export { readStack, STACK_DEPTH, symbolizeStack } from './stacks.ts';
export type { ProgramInfo, RunTimeStats } from './stats.ts';
export { enableRunTimeStats, programInfo } from './stats.ts';
