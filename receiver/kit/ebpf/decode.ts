// Decoding helpers shared by the eBPF anomaly probes: the 40-byte `struct pn_tuple`
// (probes/include/pn_tuple.bpf.h), TCP state names, transport names, event attribute builders.
import { ipString } from '../../bpf/events.ts';
import { PN_TUPLE, PN_TUPLE_SIZE, pnTuple } from '../../bpf/pn.layout.gen.ts';
import { TCP_STATES } from '../../netlink/sock-diag.ts';

export const TUPLE_SIZE = PN_TUPLE_SIZE;

export interface Tuple {
  /** 2 = IPv4, 10 = IPv6, 0 = unknown (no IP header). */
  readonly family: number;
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  /** IPPROTO_* (6 TCP, 17 UDP, ...). */
  readonly l4proto: number;
  /** TCP state number of the socket (1 = ESTABLISHED ... 12 = NEW_SYN_RECV), 0 = none. */
  readonly state: number;
}

/** Reads a `struct pn_tuple` at `offset`. */
export function readTuple(view: DataView, offset: number): Tuple {
  const family = pnTuple.family(view, offset);
  return {
    family,
    saddr: ipString(view, offset + PN_TUPLE.saddr, family),
    daddr: ipString(view, offset + PN_TUPLE.daddr, family),
    sport: pnTuple.sport(view, offset),
    dport: pnTuple.dport(view, offset),
    l4proto: pnTuple.l4proto(view, offset),
    state: pnTuple.state(view, offset),
  };
}

/**
 * `established`, `syn_sent`, ... ('' for 0): the one TCP state table (receiver/netlink/sock-diag.ts),
 * in the semconv `network.connection.state` spelling the sockets probe exports too.
 */
export function tcpStateName(state: number): string {
  return TCP_STATES[state] ?? `state_${state}`;
}

/** `network.transport` value for an IPPROTO_* number. */
export function transportName(l4proto: number): string {
  switch (l4proto) {
    case 6:
      return 'tcp';
    case 17:
      return 'udp';
    case 1:
      return 'icmp';
    case 58:
      return 'icmpv6';
    case 132:
      return 'sctp';
    case 136:
      return 'udplite';
    case 0:
      return 'unknown';
    default:
      return `ipproto_${l4proto}`;
  }
}

/** `network.type` for an address family (2 → ipv4, 10 → ipv6). */
export function networkType(family: number): string | undefined {
  return family === 2 ? 'ipv4' : family === 10 ? 'ipv6' : undefined;
}

/** Transports with ports (TCP, UDP, SCTP, UDP-Lite). */
const PORT_PROTOS = new Set([6, 17, 132, 136]);

type Attrs = Record<string, string | number | boolean | readonly string[]>;

/** Packet attributes (`source.*`, `destination.*`, transport, type) of a packet tuple. */
export function packetAttributes(t: Tuple, out: Attrs = {}): Attrs {
  const type = networkType(t.family);
  if (type) {
    out['network.type'] = type;
    out['source.address'] = t.saddr;
    out['destination.address'] = t.daddr;
  }
  if (t.l4proto !== 0 || type) out['network.transport'] = transportName(t.l4proto);
  if (PORT_PROTOS.has(t.l4proto)) {
    out['source.port'] = t.sport;
    out['destination.port'] = t.dport;
  }
  return out;
}

/** Socket attributes (`network.local.*`, `network.peer.*`, transport, type, state) of a socket tuple. */
export function socketAttributes(t: Tuple, out: Attrs = {}): Attrs {
  const type = networkType(t.family);
  if (type) {
    out['network.type'] = type;
    out['network.local.address'] = t.saddr;
    out['network.peer.address'] = t.daddr;
  }
  if (t.l4proto === 0 || PORT_PROTOS.has(t.l4proto)) {
    out['network.local.port'] = t.sport;
    out['network.peer.port'] = t.dport;
  }
  if (t.l4proto) out['network.transport'] = transportName(t.l4proto);
  if (t.state) out['network.connection.state'] = tcpStateName(t.state);
  return out;
}
