// One program run per shared hook across probes (probes/include/pn_chain.bpf.h): several probes attach a
// program to the same tracepoint (net_dev_queue: socketlatency, kernellatency, dns; sk_data_ready:
// socketlatency, kernellatency). Each of those programs ends with a tail call into slot 0 of its own
// one-entry PROG_ARRAY. Here the probes' programs on one hook form a chain in the order they joined: only
// the first is attached, each one's slot holds the next one's fd, so a packet pays one tracepoint dispatch
// and one BPF_STATS accounting per hook, however many probes use it. Each probe keeps its own object, maps,
// .rodata and events; nothing is shared but the order.
//
// A program joins after its object loads (receiver/kit/ebpf/runtime.ts, option `chained`) and leaves
// before its object closes. A join the kernel refuses (e.g. a raw_tp twin: a PROG_ARRAY holds one program
// type and one hook) attaches the program on its own instead: the probe runs as before, only unchained.
// When the first program leaves, it is detached before the next one is attached (a packet in between is
// not seen by the others, rather than seen twice by the next).
import type { Logger } from '../log/logger.ts';
import type { BpfCollection } from './object.ts';

export interface ChainMember {
  readonly coll: BpfCollection;
  /** The program on the shared hook (its section names the hook). */
  readonly program: string;
  /** Its one-entry PROG_ARRAY (PN_CHAIN in the BPF C) that holds the next member. */
  readonly next: string;
}

const ZERO = new Uint8Array(4);

function fdBytes(fd: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, fd, true);
  return b;
}

/** The members of one hook, in order; the first is the attached one. */
export class HookChain {
  readonly hook: string;
  readonly #members: ChainMember[] = [];

  constructor(hook: string) {
    this.hook = hook;
  }

  get members(): readonly ChainMember[] {
    return this.#members;
  }

  /**
   * Adds a loaded program at the end of the chain (attaching it when the chain is empty). Returns false
   * when it runs on its own instead (the kernel refused the tail-call slot) or could not attach at all.
   */
  join(m: ChainMember, log?: Logger): boolean {
    const prog = m.coll.program(m.program);
    if (prog.state !== 'loaded') return false;
    const last = this.#members.at(-1);
    if (!last) {
      if (!m.coll.attachProgram(m.program)) return false;
      this.#members.push(m);
      return true;
    }
    try {
      last.coll.map(last.next).update(ZERO, fdBytes(prog.fd));
      prog.chainedAfter = last.program;
    } catch (err) {
      log?.warn(
        { err, hook: this.hook, program: m.program },
        'cannot chain BPF program; attaching it on its own',
      );
      m.coll.attachProgram(m.program);
      return false;
    }
    this.#members.push(m);
    return true;
  }

  /** Takes a member out (before its object closes); the chain around it stays whole. */
  leave(m: ChainMember, log?: Logger): void {
    const i = this.#members.indexOf(m);
    if (i < 0) return;
    const prev = this.#members[i - 1];
    const next = this.#members[i + 1];
    this.#members.splice(i, 1);
    m.coll.program(m.program).chainedAfter = undefined;
    try {
      if (prev) {
        const slot = prev.coll.map(prev.next);
        if (next) {
          slot.update(ZERO, fdBytes(next.coll.program(next.program).fd));
          next.coll.program(next.program).chainedAfter = prev.program;
        } else slot.delete(ZERO);
      } else if (next) {
        m.coll.detachProgram(m.program);
        this.#attachFirst(log);
      }
      if (!m.coll.closed) m.coll.map(m.next).delete(ZERO);
    } catch (err) {
      log?.warn({ err, hook: this.hook, program: m.program }, 'leaving a BPF hook chain failed');
    }
  }

  /** The first member takes the hook over; one that cannot attach (its reason set) drops out for the next. */
  #attachFirst(log?: Logger): void {
    for (let first = this.#members[0]; first; first = this.#members[0]) {
      first.coll.program(first.program).chainedAfter = undefined;
      if (first.coll.attachProgram(first.program)) return;
      log?.warn(
        { hook: this.hook, program: first.program },
        'BPF program taking over a hook could not attach',
      );
      this.#members.shift();
    }
  }
}

const chains = new Map<string, HookChain>();

/** The process-wide chain of a hook (a program's section, e.g. `tp_btf/net_dev_queue`). */
export function hookChain(section: string): HookChain {
  let c = chains.get(section);
  if (!c) {
    c = new HookChain(section);
    chains.set(section, c);
  }
  return c;
}

/** Joins an object's loaded programs (program → its PN_CHAIN map) to their hooks' chains; the members. */
export function joinChains(
  coll: BpfCollection,
  chained: readonly (readonly [string, string])[],
  log?: Logger,
): ChainMember[] {
  const out: ChainMember[] = [];
  for (const [program, next] of chained) {
    if (coll.programs.get(program)?.state !== 'loaded') continue; // disabled, unavailable: nothing to chain
    const m = { coll, program, next };
    if (hookChain(coll.program(program).section).join(m, log)) out.push(m);
  }
  return out;
}

/** Takes an object's programs out of their hooks' chains (before it closes); empties `members`. */
export function leaveChains(members: ChainMember[], log?: Logger): void {
  for (const m of members.splice(0)) hookChain(m.coll.program(m.program).section).leave(m, log);
}
