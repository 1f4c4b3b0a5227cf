// dns: the signals the probe declares (metrics, events); the reference docs are generated from these.

import { SELF_METRIC_DEFS } from '../../receiver/kit/ebpf/runtime.ts';
import type { EventDef, MetricDef } from '../../receiver/probe/types.ts';
import { CAUSE_ATTR, EVENT, EVENT_TYPE, SUMMARY_ATTR } from './decode.ts';

export const M = {
  duration: 'podnet.dns.request.duration',
  responses: 'podnet.dns.response.count',
  queries: 'podnet.dns.query.count',
  timeouts: 'podnet.dns.timeout.count',
  truncated: 'podnet.dns.truncated.count',
} as const;

export const QTYPE = 'podnet.dns.question.type';
export const RCODE = 'podnet.dns.response_code';
export const METRICS: MetricDef[] = [
  {
    name: M.duration,
    kind: 'histogram',
    unit: 's',
    description:
      'Time from the first transmission of a DNS query to its response, seen on the pod’s interface (both ends in the kernel), by question type, response code and transport. Queries without a response are in podnet.dns.timeout.count.',
    attributes: [QTYPE, RCODE, 'network.transport'],
    enabled: true,
  },
  {
    name: M.responses,
    kind: 'counter',
    unit: '{response}',
    description:
      'DNS responses matched to a query of the pod, by response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...).',
    attributes: [QTYPE, RCODE, 'network.transport'],
    enabled: true,
  },
  {
    name: M.queries,
    kind: 'counter',
    unit: '{query}',
    description: 'DNS query messages the pod sent (retransmissions of the same query included).',
    attributes: [QTYPE, 'network.transport'],
    enabled: true,
  },
  {
    name: M.timeouts,
    kind: 'counter',
    unit: '{query}',
    description:
      'DNS queries with no response within the timeout window (`timeoutMs`, default 5 s), including those whose response came later.',
    attributes: [QTYPE, 'network.transport'],
    enabled: true,
  },
  {
    name: M.truncated,
    kind: 'counter',
    unit: '{response}',
    description: 'DNS responses with the TC (truncated) bit: the client has to retry over TCP.',
    attributes: [QTYPE, RCODE, 'network.transport'],
    enabled: true,
  },
  ...SELF_METRIC_DEFS,
];

const EVENT_ATTRS = [
  'dns.question.name',
  QTYPE,
  RCODE,
  'podnet.dns.id',
  'podnet.dns.sends',
  'podnet.dns.truncated',
  'podnet.dns.question.name_cut',
  'server.address',
  'server.port',
  'client.address',
  'client.port',
  'network.transport',
  'network.type',
  'podnet.latency.duration',
  'error.type',
  SUMMARY_ATTR,
  'podnet.netns.origin_inode',
];

export const EVENTS: EventDef[] = [
  {
    name: EVENT.slow,
    description:
      'A DNS response slower than `slowMs` (default 100 ms): name, type, server, latency, response code.',
    severity: 'INFO',
    attributes: EVENT_ATTRS,
    types: [EVENT_TYPE.slow],
    enabled: true,
  },
  {
    name: EVENT.failed,
    description: 'A DNS response with SERVFAIL or REFUSED: name, type, server, latency.',
    severity: 'WARN',
    attributes: EVENT_ATTRS,
    types: [EVENT_TYPE.failed],
    enabled: true,
  },
  {
    name: EVENT.timeout,
    description:
      'A DNS query with no response within `timeoutMs`: name, type, server, time waited, how it was decided (`podnet.dns.timeout.kind`), and `podnet.dns.cause` = `conntrack_insert_race` when the netns’ conntrack insert_failed / clash_resolve moved in the same window.',
    severity: 'WARN',
    attributes: [
      ...EVENT_ATTRS,
      'podnet.dns.timeout.kind',
      CAUSE_ATTR,
      'podnet.dns.conntrack.insert_failed',
      'podnet.dns.conntrack.clash_resolve',
    ],
    types: [EVENT_TYPE.timeout],
    enabled: true,
  },
];
