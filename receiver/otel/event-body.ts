// The one-line human body of an event's log record (the logs data model: Body is "a string display
// message of the event"), built from the structured attributes the record carries anyway, e.g.
//
//   packet drop NETFILTER_DROP tcp 10.0.0.5:41234 -> 10.0.0.9:80 on eth0 in pod shop/web-7d9 (nft_do_chain)
//   tcp reset nosock tcp local 10.0.0.9:80 peer 10.0.0.5:41234 close in host
//   socket slow SOCKETLAT_READSLOW tcp local ... 153 ms by nginx[4711] in pod shop/web-7d9
//
// Generic over the probes: the event name (without `podnet.`), the kind (`*.kind` attribute) and
// `error.type` (else `podnet.event.type`), the transport, the tuple (`source.*` -> `destination.*`, or
// `network.local.*` / `network.peer.*`), the interface, state, duration and task, the entity, and where
// in the kernel (`podnet.drop.location`, else the innermost stack frame).
import type { AttributeValue } from '../probe/types.ts';

type Attrs = Readonly<Record<string, AttributeValue>>;

function endpoint(addr: AttributeValue | undefined, port: AttributeValue | undefined): string | undefined {
  if (addr === undefined && port === undefined) return undefined;
  const a = addr === undefined ? '*' : String(addr);
  const host = a.includes(':') ? `[${a}]` : a;
  return port === undefined ? host : `${host}:${String(port)}`;
}

/** `0.153` s → `153 ms`; `0.000087` → `87 us`. */
export function humanSeconds(s: number): string {
  if (s >= 1) return `${Number(s.toFixed(2))} s`;
  if (s >= 1e-3) return `${Math.round(s * 1e3)} ms`;
  if (s >= 1e-6) return `${Math.round(s * 1e6)} us`;
  return `${Math.round(s * 1e9)} ns`;
}

/** How the entity reads in a body: `pod shop/web-7d9`, `host`, `netns blue`, `unattributed`. */
export function entityText(entity: Attrs): string {
  const kind = String(entity['podnet.entity.kind'] ?? 'unattributed');
  if (kind === 'pod') return `pod ${String(entity['k8s.namespace.name'])}/${String(entity['k8s.pod.name'])}`;
  if (kind === 'netns') {
    const name = entity['podnet.netns.name'];
    return name !== undefined ? `netns ${String(name)}` : `netns ${String(entity['podnet.netns.inode'])}`;
  }
  if (kind === 'unattributed' && entity['podnet.netns.inode'] !== undefined)
    return `unattributed netns ${String(entity['podnet.netns.inode'])}`;
  return kind;
}

export function eventBody(
  name: string,
  type: string,
  a: Attrs,
  entity: Attrs,
  stack: readonly string[] | undefined,
): string {
  const parts: string[] = [name.startsWith('podnet.') ? name.slice(7).replace(/\./g, ' ') : name];
  for (const k in a)
    if (k.endsWith('.kind') && !k.startsWith('podnet.peer.') && typeof a[k] === 'string')
      parts.push(a[k] as string);
  const err = a['error.type'];
  parts.push(err !== undefined && err !== '' ? String(err) : type);
  if (a['network.transport'] !== undefined) parts.push(String(a['network.transport']));
  const src = endpoint(a['source.address'], a['source.port']);
  const dst = endpoint(a['destination.address'], a['destination.port']);
  if (src !== undefined || dst !== undefined) parts.push(`${src ?? '*'} -> ${dst ?? '*'}`);
  const local = endpoint(a['network.local.address'], a['network.local.port']);
  const peer = endpoint(a['network.peer.address'], a['network.peer.port']);
  if (local !== undefined) parts.push(`local ${local}`);
  if (peer !== undefined) parts.push(`peer ${peer}`);
  if (a['network.interface.name'] !== undefined) parts.push(`on ${String(a['network.interface.name'])}`);
  if (a['network.connection.state'] !== undefined) parts.push(String(a['network.connection.state']));
  const d = a['podnet.latency.duration'];
  if (typeof d === 'number' && Number.isFinite(d)) parts.push(humanSeconds(d));
  const comm = a['podnet.task.comm'];
  if (comm !== undefined) {
    const pid = a['process.pid'];
    parts.push(`by ${String(comm)}${pid !== undefined ? `[${String(pid)}]` : ''}`);
  }
  const other = peerText(a);
  if (other !== undefined) parts.push(`(other end: ${other})`);
  parts.push(`in ${entityText(entity)}`);
  const where = a['podnet.drop.location'] ?? stack?.[0]?.replace(/\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/i, '');
  if (where !== undefined && where !== '') parts.push(`(${String(where)})`);
  return parts.join(' ');
}

/** The other end as the peer keys name it (`pod pay/api-1`, `service pay/api`, `node n2`), when known. */
function peerText(a: Attrs): string | undefined {
  const ns = a['podnet.peer.k8s.namespace.name'];
  const pod = a['podnet.peer.k8s.pod.name'];
  if (pod !== undefined) return `pod ${ns !== undefined ? `${String(ns)}/` : ''}${String(pod)}`;
  const svc = a['podnet.peer.k8s.service.name'];
  if (svc !== undefined) return `service ${ns !== undefined ? `${String(ns)}/` : ''}${String(svc)}`;
  const node = a['podnet.peer.k8s.node.name'];
  if (node !== undefined) return `node ${String(node)}`;
  return undefined;
}

/** A kernel stack as `code.stacktrace`: one frame per line, innermost first (as `exception.stacktrace`). */
export function stackTrace(stack: readonly string[]): string {
  return stack.join('\n');
}
