// Kernel-reach scenario of the dns probe (scenarios.ts runs it, on this machine and in the 6.1 VM): dig in
// a pod-like netns against unbound (with a dnsmasq upstream that answers SERVFAIL) listening on the host
// side of its veth. First hook `tc` alone (the default: TC on the veth — TCX links where the kernel has
// them, clsact before 6.6 — and on the host's own devices), then hooks `auto` (TC on the veth, tracepoints
// for the rest) and `tracepoint` (net_dev_queue / netif_receive_skb) at once, on a second pod. Each counts
// exactly what dig saw and unbound logged, and its request durations add up to no more than dig's own
// query times.
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { createPodNetns } from '../dns/hostveth.ts';
import { DnsServer, dig } from '../dns/server.ts';
import { counterPoint, testContext } from '../latency/env.ts';
import type { Fact } from './scenarios.ts';

const RC = 'podnet.dns.response_code';

/** Sum and count of the request-duration histograms of one netns. */
function durations(points: readonly MetricPoint[], netns: number): { count: number; sumS: number } {
  let count = 0;
  let sumS = 0;
  for (const p of points) {
    if (p.metric !== M.duration || p.netns !== netns) continue;
    const v = p.value as { count: number; sum: number };
    count += v.count;
    sumS += v.sum;
  }
  return { count, sumS };
}

export async function dnsFacts(): Promise<Fact[]> {
  // hook tc alone first: before 6.6 two dns probes' clsact filters on one veth are one filter (same
  // handle / priority: the later replaces the earlier, as after a restart), so tc and auto cannot share it
  return [...(await dnsRound(['tc'], 'k', 73)), ...(await dnsRound(['auto', 'tracepoint'], 'l', 75))];
}

async function dnsRound(hooks: readonly DnsArgs['hook'][], tag: string, octet: number): Promise<Fact[]> {
  const pod = createPodNetns(tag, octet);
  let server: DnsServer | undefined;
  const probes: [string, Probe<DnsArgs>][] = [];
  try {
    server = await DnsServer.start(pod.host);
    for (const hook of hooks) {
      const args = dnsProbe.args.parse({ hook, conntrackDiagnosis: false, rateLimit: 0 });
      probes.push([hook, await dnsProbe.create(testContext([pod.entity]), args)]);
    }
    const seen: Record<string, number> = {};
    let digMs = 0;
    const ask = (addr: string, name: string, o: Parameters<typeof dig>[3] = {}) => {
      const r = dig(pod.side, addr, name, o);
      seen[r.status] = (seen[r.status] ?? 0) + 1;
      digMs += r.ms;
    };
    const h = pod.host;
    for (let i = 0; i < 5; i++) ask(h.ipv4, 'a.ok.podnet');
    for (let i = 0; i < 3; i++) ask(h.ipv6, 'a.ok.podnet', { type: 'AAAA' });
    for (let i = 0; i < 2; i++) ask(h.ipv4, `nx${i}.ok.podnet`);
    for (let i = 0; i < 2; i++) ask(h.ipv4, `s${i}.fail.podnet`);
    const tcpNoError = 2;
    for (let i = 0; i < tcpNoError; i++) ask(h.ipv4, 'a.ok.podnet', { tcp: true });
    const logged = (rc: string) => server!.count(pod.side.ipv4, rc) + server!.count(pod.side.ipv6, rc);
    for (const end = Date.now() + 5000; server.replies.length < 14 && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 50));
    const truth = { dig: seen, server: [logged('NOERROR'), logged('NXDOMAIN'), logged('SERVFAIL')] };
    const facts: Fact[] = [];
    for (const [hook, probe] of probes) {
      const st = probe.status();
      const p = await probe.collect([]);
      const n = (metric: string, m: Record<string, string>) => counterPoint(p, metric, pod.side.inode, m);
      const udp = { 'network.transport': 'udp' };
      const d = durations(p, pod.side.inode);
      // TCP: TC reads the payload in page frags; the tracepoints see only the linear area (docs/probes-dns.md)
      const tcp = hook !== 'tracepoint' ? tcpNoError : null;
      facts.push({
        id: `dns.${hook}`,
        what: `dns (hook ${hook}): UDP answered / NXDOMAIN / SERVFAIL == dig and unbound's log${tcp ? ', TCP answers too' : ''}; durations <= dig's query times`,
        expected: {
          state: 'running',
          truth: {
            dig: { NOERROR: 8 + tcpNoError, NXDOMAIN: 2, SERVFAIL: 2 },
            server: [8 + tcpNoError, 2, 2],
          },
          udp: { queries: 12, noerror: 8, nxdomain: 2, servfail: 2 },
          tcpAnswers: tcp,
          durations: { counted: true, withinDig: true },
          // counts not made because a counter map had no room (PN_STAT_COUNTER_FULL): names that cause
          counterFull: 0,
        },
        actual: {
          state: st.state,
          truth,
          udp: {
            queries: n(M.queries, udp),
            noerror: n(M.responses, { ...udp, [RC]: 'NOERROR' }),
            nxdomain: n(M.responses, { ...udp, [RC]: 'NXDOMAIN' }),
            servfail: n(M.responses, { ...udp, [RC]: 'SERVFAIL' }),
          },
          tcpAnswers: tcp === null ? null : n(M.responses, { 'network.transport': 'tcp', [RC]: 'NOERROR' }),
          // dig prints whole milliseconds (rounded): 1 ms of slack per query
          durations: {
            counted: d.count === n(M.responses, {}) && d.count > 0 && d.sumS > 0,
            withinDig: d.sumS * 1000 <= digMs + 14,
          },
          counterFull: p
            .filter((x) => x.metric === SELF_METRIC.counterFull)
            .reduce((a, x) => a + (x.value as number), 0),
        },
        info: {
          variant: st.details?.['attachMode'] ? `${hook} (${String(st.details['attachMode'])})` : hook,
          programs: ((st.details?.['programs'] ?? []) as { name: string; state: string }[])
            .filter((x) => x.state === 'attached' || x.state === 'loaded')
            .map((x) => x.name),
          sumMs: Math.round(d.sumS * 1e4) / 10,
          digMs,
          reason: st.reason ?? null,
        },
      });
    }
    return facts;
  } finally {
    for (const [, p] of probes) await p.close();
    server?.stop();
    pod.cleanup();
  }
}
