// Every probe podnet knows. Adding a probe = a folder under probes/ + one line here.
import type { ProbeSpec } from '../receiver/probe/types.ts';
import { conntrackProbe } from './conntrack/conntrack.ts';
import { cteventsProbe } from './ctevents/ctevents.ts';
import { dnsProbe } from './dns/dns.ts';
import { flowProbe } from './flow/flow.ts';
import { kernellatencyProbe } from './kernellatency/kernellatency.ts';
import { netdevProbe } from './netdev/netdev.ts';
import { netiftxlatProbe } from './netiftxlat/netiftxlat.ts';
import { packetlossProbe } from './packetloss/packetloss.ts';
import { peersProbe } from './peers/peers.ts';
import { processProbe } from './process/process.ts';
import { qdiscProbe } from './qdisc/qdisc.ts';
import { snmpProbe } from './snmp/snmp.ts';
import { socketlatencyProbe } from './socketlatency/socketlatency.ts';
import { socketsProbe } from './sockets/sockets.ts';
import { sockoverflowProbe } from './sockoverflow/sockoverflow.ts';
import { sockstatProbe } from './sockstat/sockstat.ts';
import { softirqProbe } from './softirq/softirq.ts';
import { softnetProbe } from './softnet/softnet.ts';
import { tcpresetProbe } from './tcpreset/tcpreset.ts';
import { tcpretransProbe } from './tcpretrans/tcpretrans.ts';

// biome-ignore lint/suspicious/noExplicitAny: each probe has its own args type; the registry holds them all.
export type AnyProbeSpec = ProbeSpec<any>;

/** Metrics from procfs and netlink first, then eBPF anomalies, then eBPF latency. */
export const probeSpecs: readonly AnyProbeSpec[] = [
  netdevProbe,
  snmpProbe,
  sockstatProbe,
  softnetProbe,
  processProbe,
  socketsProbe,
  conntrackProbe,
  qdiscProbe,
  packetlossProbe,
  tcpresetProbe,
  tcpretransProbe,
  sockoverflowProbe,
  cteventsProbe,
  socketlatencyProbe,
  softirqProbe,
  netiftxlatProbe,
  kernellatencyProbe,
  dnsProbe,
  flowProbe,
  peersProbe,
];
