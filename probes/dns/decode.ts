// dns: decoding of the layouts in dns.h (pending queries, ring events, counter keys) and the DNS names
// (question types, response codes, wire-format question names).
import { ipString } from '../../receiver/bpf/events.ts';
import { pnEventHdr } from '../../receiver/bpf/pn.layout.gen.ts';
import { networkType, transportName } from '../../receiver/kit/ebpf/decode.ts';
import {
  DNS_EVENT,
  DNS_KEY,
  DNS_KEY_SIZE,
  DNS_PENDING,
  DNS_PENDING_SIZE,
  dnsEvent,
  dnsKey,
  dnsPending,
} from './dns.layout.gen.ts';

/** Offsets and readers: dns.layout.gen.ts, generated from dns.bpf.o's BTF (structs in dns.h). */
export const KEY_SIZE = DNS_KEY_SIZE;
/** Bytes of the question name the kernel keeps (DNS_NAME_MAX in dns.h; `name` ends struct dns_pending). */
export const NAME_MAX = DNS_PENDING_SIZE - DNS_PENDING.name;
export const EV = { slow: 1, failed: 2, timeout: 3 } as const;
export const FLAG = { truncated: 1, late: 2, requery: 4 } as const;

/** Question types kept as attribute values (the kernel folds the rest into 0 = `other`). */
const QTYPES: Readonly<Record<number, string>> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  43: 'DS',
  46: 'RRSIG',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
  257: 'CAA',
};

export function qtypeName(t: number): string {
  return QTYPES[t] ?? 'other';
}

/** RFC 1035 / 2136 / 8490 header RCODEs (4 bits). */
const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
  'DSOTYPENI',
];

export function rcodeName(r: number): string {
  return RCODES[r] ?? `RCODE${r}`;
}

/**
 * A wire-format question name (length-prefixed labels) as dig prints it, without the final dot; bytes
 * outside printable ASCII and `.`/`\` inside labels escaped as `\DDD` / `\.`. `complete` is false when
 * the kernel kept only the first bytes of a longer name.
 */
export function wireName(bytes: Uint8Array, len: number): { name: string; complete: boolean } {
  const labels: string[] = [];
  let off = 0;
  const end = Math.min(len, bytes.length);
  while (off < end) {
    const l = bytes[off]!;
    if (l === 0) return { name: labels.length ? labels.join('.') : '.', complete: true };
    if (l & 0xc0) break;
    let s = '';
    for (let i = off + 1; i <= off + l && i < end; i++) {
      const c = bytes[i]!;
      if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
      else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
      else s += `\\${String(c).padStart(3, '0')}`;
    }
    if (s) labels.push(s); // a label cut at the end of what the kernel kept may be empty
    off += l + 1;
  }
  return { name: labels.join('.'), complete: false };
}

export interface DnsKey {
  readonly rawNetns: number;
  readonly id: number;
  readonly family: number;
  readonly l4proto: number;
  readonly client: string;
  readonly server: string;
  readonly clientPort: number;
  readonly serverPort: number;
}

export function readKey(view: DataView, o: number): DnsKey {
  const family = dnsKey.family(view, o);
  return {
    rawNetns: dnsKey.netns(view, o),
    id: dnsKey.id(view, o),
    family,
    l4proto: dnsKey.l4proto(view, o),
    client: ipString(view, o + DNS_KEY.client, family),
    server: ipString(view, o + DNS_KEY.server, family),
    clientPort: dnsKey.cport(view, o),
    serverPort: dnsKey.sport(view, o),
  };
}

export interface DnsPending {
  readonly tsNs: bigint;
  readonly netns: number;
  readonly qtype: number;
  readonly sends: number;
  readonly name: string;
  readonly nameComplete: boolean;
}

/** struct dns_pending at `o`. */
export function readPending(view: DataView, o: number): DnsPending {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + o + DNS_PENDING.name, NAME_MAX);
  const n = wireName(bytes, dnsPending.name_len(view, o));
  return {
    tsNs: dnsPending.ts_ns(view, o),
    netns: dnsPending.netns(view, o),
    qtype: dnsPending.qtype(view, o),
    sends: dnsPending.sends(view, o),
    name: n.name,
    nameComplete: n.complete,
  };
}

/** One slow / failed / timed-out query, from a ring record or the receiver's sweep. */
export interface DnsOccurrence {
  readonly type: number;
  /** Netns to count under (watched inode or 0). */
  readonly netns: number;
  readonly key: DnsKey;
  readonly queryTsNs: bigint;
  /** Kernel monotonic time of the decision (response seen, re-query, sweep). */
  readonly atNs: bigint;
  /** Response time, or for a timeout without response the time waited until the decision. */
  readonly latencyNs: number;
  readonly qtype: number;
  readonly rcode: number;
  readonly flags: number;
  readonly sends: number;
  readonly name: string;
  readonly nameComplete: boolean;
}

/** struct dns_event at `o` (its pn_event_hdr first). */
export function readEvent(view: DataView, o: number): DnsOccurrence {
  const atNs = pnEventHdr.ts_ns(view, o + DNS_EVENT.hdr);
  const queryTsNs = dnsEvent.query_ts_ns(view, o);
  const latency = Number(dnsEvent.latency_ns(view, o));
  const bytes = new Uint8Array(view.buffer, view.byteOffset + o + DNS_EVENT.name, NAME_MAX);
  const n = wireName(bytes, dnsEvent.name_len(view, o));
  return {
    type: pnEventHdr.type(view, o + DNS_EVENT.hdr),
    netns: pnEventHdr.netns(view, o + DNS_EVENT.hdr),
    key: readKey(view, o + DNS_EVENT.k),
    queryTsNs,
    atNs,
    latencyNs: latency || Number(atNs - queryTsNs),
    qtype: dnsEvent.qtype(view, o),
    rcode: dnsEvent.rcode(view, o),
    flags: dnsEvent.flags(view, o),
    sends: dnsEvent.sends(view, o),
    name: n.name,
    nameComplete: n.complete,
  };
}

export const EVENT = { slow: 'podnet.dns.slow', failed: 'podnet.dns.failed', timeout: 'podnet.dns.timeout' };
export const EVENT_TYPE = { slow: 'DNS_SLOW', failed: 'DNS_FAILED', timeout: 'DNS_TIMEOUT' };
/** Event attribute: why a query timed out, when podnet can tell. */
export const CAUSE_ATTR = 'podnet.dns.cause';
export const CAUSE_CONNTRACK_RACE = 'conntrack_insert_race';
/** Event attribute: a readable one-line summary (for log bodies). */
export const SUMMARY_ATTR = 'podnet.dns.summary';

function kindOf(type: number): keyof typeof EVENT {
  return type === EV.slow ? 'slow' : type === EV.failed ? 'failed' : 'timeout';
}

const ms = (ns: number) => `${(ns / 1e6).toFixed(ns < 10e6 ? 2 : 0)} ms`;

/** Event name, KubeSkoop-style type, severity and attributes of an occurrence. */
export function occurrenceEvent(o: DnsOccurrence): {
  name: string;
  type: string;
  severity: 'WARN' | 'INFO';
  attributes: Record<string, string | number | boolean>;
} {
  const kind = kindOf(o.type);
  const k = o.key;
  const server = k.family === 10 ? `[${k.server}]:${k.serverPort}` : `${k.server}:${k.serverPort}`;
  const qtype = qtypeName(o.qtype);
  const attributes: Record<string, string | number | boolean> = {
    'dns.question.name': o.name,
    'podnet.dns.question.type': qtype,
    'podnet.dns.id': k.id,
    'podnet.dns.sends': o.sends,
    'server.address': k.server,
    'server.port': k.serverPort,
    'client.address': k.client,
    'client.port': k.clientPort,
    'network.transport': transportName(k.l4proto),
    'podnet.latency.duration': o.latencyNs / 1e9,
  };
  const nt = networkType(k.family);
  if (nt) attributes['network.type'] = nt;
  if (!o.nameComplete) attributes['podnet.dns.question.name_cut'] = true;
  let summary: string;
  if (kind === 'timeout') {
    attributes['error.type'] = 'timeout';
    attributes['podnet.dns.timeout.kind'] =
      o.flags & FLAG.late ? 'late_response' : o.flags & FLAG.requery ? 'requery' : 'no_response';
    if (o.flags & FLAG.late) attributes['podnet.dns.response_code'] = rcodeName(o.rcode);
    summary = `DNS ${qtype} ${o.name} to ${server} timed out (no answer within the window; waited ${ms(o.latencyNs)}, ${o.sends} send(s))`;
  } else {
    const rcode = rcodeName(o.rcode);
    attributes['podnet.dns.response_code'] = rcode;
    if (kind === 'failed') attributes['error.type'] = rcode;
    summary = `DNS ${qtype} ${o.name} to ${server}: ${rcode} after ${ms(o.latencyNs)}`;
  }
  if (o.flags & FLAG.truncated) attributes['podnet.dns.truncated'] = true;
  attributes[SUMMARY_ATTR] = summary;
  return {
    name: EVENT[kind],
    type: EVENT_TYPE[kind],
    severity: kind === 'slow' ? 'INFO' : 'WARN',
    attributes,
  };
}
