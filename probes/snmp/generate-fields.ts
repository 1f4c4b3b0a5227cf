// Regenerates `fields.ts`, the static table of the kernel MIB fields the snmp probe knows, from the
// running kernel's `/proc/net/{snmp,netstat,snmp6}`:
//   node probes/snmp/generate-fields.ts > probes/snmp/fields.ts && npx biome check --write probes/snmp
// The table is committed (metric declarations are static, the docs are generated from them). Fields a
// later kernel adds are exported by the probe only with `dynamic: true` (see docs/probes-procfs.md).
// Per-type ICMP message counters (`IcmpMsg: InType3`, `Icmp6InType135`) are not in the table: they are
// two attributed metrics (`podnet.snmp.icmp_msg.in/out`, attribute `podnet.icmp.type`).
import { readFileSync } from 'node:fs';
import { parseNameValueLines, parseSnmp } from './parse.ts';
import { snakeCase } from './snake.ts';

// KubeSkoop's exported fields (its legacy-style tcp, udp, ip, tcpext probes), lower-cased: the default-on set.
const KUBESKOOP: Record<string, readonly string[]> = {
  Tcp: 'activeopens passiveopens retranssegs attemptfails estabresets currestab insegs outsegs inerrs outrsts'.split(
    ' ',
  ),
  Udp: 'indatagrams noports inerrors outdatagrams rcvbuferrors sndbuferrors incsumerrors ignoredmulti'.split(
    ' ',
  ),
  Ip: 'forwarding defaultttl inreceives inhdrerrors inaddrerrors forwdatagrams inunknownprotos indiscards indelivers outrequests outdiscards outnoroutes reasmtimeout reasmreqds reasmoks reasmfails fragoks fragfails fragcreates'.split(
    ' ',
  ),
  TcpExt:
    'listendrops listenoverflows tcpsynretrans tcpfastretrans tcpretransfail tcptimeouts tcpabortonclose tcpabortonmemory tcpabortontimeout tcpabortonlinger tcpabortondata tcpabortfailed tcpackskippedsynrecv tcpackskippedpaws tcpackskippedseq tcpackskippedfinwait2 tcpackskippedtimewait tcpackskippedchallenge tcprcvqdrop tcpmemorypressures tcpmemorypressureschrono pawsactive pawsestab embryonicrsts tcpwinprobe tcpkeepalive tcpmtupfail tcpmtupsuccess tcpzerowindowdrop tcpbacklogdrop pfmemallocdrop tcpwqueuetoobig'.split(
      ' ',
    ),
};

const GROUP_NAMES: Record<string, string> = {
  Ip: 'ip',
  Icmp: 'icmp',
  Tcp: 'tcp',
  Udp: 'udp',
  UdpLite: 'udp_lite',
  TcpExt: 'tcp_ext',
  IpExt: 'ip_ext',
  MPTcpExt: 'mptcp_ext',
  Ip6: 'ip6',
  Icmp6: 'icmp6',
  Udp6: 'udp6',
  UdpLite6: 'udp_lite6',
};

// Levels, not counters.
const GAUGES: Record<string, readonly string[]> = {
  Ip: ['Forwarding', 'DefaultTTL'],
  Tcp: ['RtoAlgorithm', 'RtoMin', 'RtoMax', 'MaxConn', 'CurrEstab'],
  MPTcpExt: ['MPCurrEstab'],
};

interface Row {
  file: string;
  group: string;
  field: string;
  metric: string;
  kind: 'counter' | 'gauge';
  unit: string;
  scale?: number;
  enabled: boolean;
}

function unitOf(group: string, field: string): { unit: string; scale?: number } {
  if (group === 'Ip' && field === 'Forwarding') return { unit: '{mode}' };
  if (group === 'Ip' && field === 'DefaultTTL') return { unit: '{hop}' };
  if (group === 'Tcp' && (field === 'RtoMin' || field === 'RtoMax')) return { unit: 's', scale: 0.001 };
  if (group === 'Tcp' && field === 'RtoAlgorithm') return { unit: '{mode}' };
  if (group === 'TcpExt' && field === 'TCPMemoryPressuresChrono') return { unit: 's', scale: 0.001 };
  if (/Octets$/.test(field)) return { unit: 'By' };
  switch (group) {
    case 'Ip':
    case 'Ip6':
    case 'IpExt':
      return { unit: '{packet}' };
    case 'Icmp':
    case 'Icmp6':
      return { unit: '{message}' };
    case 'Tcp':
      return /Opens|Fails|Resets|CurrEstab|MaxConn/.test(field)
        ? { unit: '{connection}' }
        : { unit: '{segment}' };
    case 'Udp':
    case 'UdpLite':
    case 'Udp6':
    case 'UdpLite6':
      return { unit: '{datagram}' };
    default:
      return { unit: '{event}' };
  }
}

function row(file: string, group: string, field: string): Row {
  const g = GROUP_NAMES[group];
  if (!g) throw new Error(`unknown group ${group}`);
  const u = unitOf(group, field);
  return {
    file,
    group,
    field,
    metric: `podnet.snmp.${g}.${snakeCase(field)}`,
    kind: GAUGES[group]?.includes(field) ? 'gauge' : 'counter',
    ...u,
    enabled: KUBESKOOP[group]?.includes(field.toLowerCase()) ?? false,
  };
}

const rows: Row[] = [];
for (const file of ['snmp', 'netstat']) {
  for (const g of parseSnmp(readFileSync(`/proc/net/${file}`, 'latin1'), file)) {
    if (g.group === 'IcmpMsg') continue;
    for (const f of g.fields) rows.push(row(file, g.group, f));
  }
}
for (const name of parseNameValueLines(readFileSync('/proc/net/snmp6', 'latin1')).names) {
  const m = /^(Ip6|Icmp6|UdpLite6|Udp6)(.+)$/.exec(name);
  if (!m) throw new Error(`snmp6 name without known prefix: ${name}`);
  if (m[1] === 'Icmp6' && /^(In|Out)Type[0-9]+$/.test(m[2]!)) continue;
  rows.push(row('snmp6', m[1]!, m[2]!));
}
const metricNames = new Set<string>();
for (const r of rows) {
  if (metricNames.has(r.metric)) throw new Error(`duplicate metric ${r.metric}`);
  metricNames.add(r.metric);
}
for (const [g, list] of Object.entries(KUBESKOOP)) {
  for (const f of list)
    if (!rows.some((r) => r.group === g && r.field.toLowerCase() === f))
      throw new Error(`KubeSkoop field ${g} ${f} missing`);
}

const uname = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
const out: string[] = [
  `// GENERATED by probes/snmp/generate-fields.ts from the /proc/net/{snmp,netstat,snmp6} of kernel ${uname}.`,
  '// Do not edit by hand: regenerate (see the generator) and review the diff.',
  "import type { SnmpField } from './field.ts';",
  '',
  '// file, kernel group, kernel field, metric, kind, unit, default-on (KubeSkoop exports it), scale',
  'export const SNMP_FIELDS: readonly SnmpField[] = [',
];
for (const r of rows) {
  const scale = r.scale === undefined ? '' : `, ${r.scale}`;
  out.push(
    `  ['${r.file}', '${r.group}', '${r.field}', '${r.metric}', '${r.kind}', '${r.unit}', ${r.enabled}${scale}],`,
  );
}
out.push('];', '');
process.stdout.write(out.join('\n'));
