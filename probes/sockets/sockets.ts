// sockets: TCP and UDP sockets of each netns through sock_diag (NETLINK_SOCK_DIAG opened inside the
// netns): connections by state, queues, socket memory (SK_MEMINFO), listen-queue fill, and connection
// quality from tcp_info (RTT histogram, retransmits). The values equal what `ss -tuanmi` shows in that
// netns. Every value is a level over the sockets alive at collection time (closed sockets leave the
// sums), so all metrics are gauges; the monotonic per-netns retransmit counter is the snmp probe's
// `podnet.snmp.tcp.retrans_segs` (and the eBPF `podnet.tcp.retransmit.count`).
// The declarations (args, metrics) are in defs.ts and the aggregation of sock_diag records in
// summarize.ts; this file is the probe (availability, per-netns reads, cumulative RTT histogram) and
// re-exports what other modules import from here.
import { createNetlinkProbe } from '../../receiver/kit/netlink.ts';
import { NetlinkError } from '../../receiver/netlink/codec.ts';
import { AF_INET, dumpInetSockets, IPPROTO_TCP, TCP_LISTEN } from '../../receiver/netlink/sock-diag.ts';
import { NETLINK_SOCK_DIAG, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { HistogramValue, ProbeSpec } from '../../receiver/probe/types.ts';
import { argsSchema, metrics, type SocketsArgs } from './defs.ts';
import { EVERY_SOCKET, type SocketSummary, socketPresence, summarize, toPoints } from './summarize.ts';

export { DEFAULT_RTT_BOUNDARIES, M, type SocketsArgs } from './defs.ts';
export {
  EVERY_SOCKET,
  type SocketPresence,
  type SocketSummary,
  socketPresence,
  summarize,
} from './summarize.ts';

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a === b || (a.length === b.length && a.every((v, i) => v === b[i]));
}

export const socketsProbe: ProbeSpec<SocketsArgs> = {
  name: 'sockets',
  description:
    'TCP/UDP sockets per netns via sock_diag: connections by state, queues, socket memory, listen-queue fill, RTT histogram and retransmits (as ss -tuanmi shows them).',
  source: 'netlink',
  defaultEnabled: true,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    try {
      withNetlinkSocket('/proc/self/ns/net', NETLINK_SOCK_DIAG, (sock) => {
        dumpInetSockets(sock, AF_INET, IPPROTO_TCP, [], () => {}, 1 << TCP_LISTEN);
      });
      return { available: true };
    } catch (err) {
      return {
        available: false,
        reason: `sock_diag (NETLINK_SOCK_DIAG) unusable: ${(err as Error).message}`,
      };
    }
  },
  async create(ctx, initial) {
    let v1 = true;
    /**
     * Cumulative RTT samples per netns: bucket bounds, counts, sum (µs, exact), count; `value` = the
     * histogram last handed out (never changed afterwards: handed out again while no sample is added).
     */
    const rttTotals = new Map<
      number,
      {
        bounds: readonly number[];
        counts: number[];
        sumUs: number;
        count: number;
        value: HistogramValue | undefined;
      }
    >();
    const accumulate = (netns: number, sum: SocketSummary, bounds: readonly number[]): HistogramValue => {
      let acc = rttTotals.get(netns);
      if (!acc || !sameBounds(acc.bounds, bounds)) {
        // First sample of this netns, or new bucket bounds: the cumulative series (re)starts.
        acc = {
          bounds,
          counts: new Array<number>(bounds.length + 1).fill(0),
          sumUs: 0,
          count: 0,
          value: undefined,
        };
        rttTotals.set(netns, acc);
      }
      // No sample this time (every idle netns): the same totals, so the same (unchanged) object.
      if (sum.rttCount === 0 && acc.value !== undefined) return acc.value;
      for (let i = 0; i < acc.counts.length; i++) acc.counts[i]! += sum.rttCounts[i]!;
      acc.sumUs += sum.rttSumUs;
      acc.count += sum.rttCount;
      acc.value = { boundaries: bounds, counts: [...acc.counts], sum: acc.sumUs / 1e6, count: acc.count };
      return acc.value;
    };
    // The args as summarize() takes them, made once per args object and request kind (not per netns).
    let summaryArgs:
      | { a: SocketsArgs; v1: boolean; args: SocketsArgs & { tcpAllFamiliesRequest: boolean } }
      | undefined;
    const argsFor = (a: SocketsArgs, v: boolean): SocketsArgs & { tcpAllFamiliesRequest: boolean } => {
      if (summaryArgs?.a !== a || summaryArgs.v1 !== v)
        summaryArgs = { a, v1: v, args: { ...a, tcpAllFamiliesRequest: v } };
      return summaryArgs.args;
    };
    return createNetlinkProbe({
      log: ctx.log,
      protocol: NETLINK_SOCK_DIAG,
      entities: ctx.entities,
      args: initial,
      read: (open, entity, out, a, cycle) => {
        const presence = a.skipEmpty ? socketPresence(entity, cycle) : EVERY_SOCKET;
        let summary: SocketSummary;
        try {
          summary = summarize(open, argsFor(a, v1), presence);
        } catch (err) {
          // A kernel without the legacy request: one v2 dump per family from now on.
          if (!v1 || !(err instanceof NetlinkError) || err.errno === 11) throw err;
          v1 = false;
          ctx.log.info({ errno: err.errno }, 'TCPDIAG_GETSOCK refused; dumping TCP per family');
          summary = summarize(open, argsFor(a, false), presence);
        }
        toPoints(
          summary,
          entity.netnsInode,
          accumulate(entity.netnsInode, summary, a.rttBoundaries),
          a.udp,
          out,
        );
      },
      afterCollect: (entities) => {
        // Forget the RTT totals of netns that are no longer watched.
        const live = new Set(entities.map((e) => e.netnsInode));
        for (const inode of rttTotals.keys()) if (!live.has(inode)) rttTotals.delete(inode);
      },
      onClose: () => rttTotals.clear(),
    });
  },
};
