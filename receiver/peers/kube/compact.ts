// API objects (core/v1 Pod, Service, Node; discovery.k8s.io/v1 EndpointSlice, as JSON) → the small
// records the index keeps (index.ts). Unknown or malformed fields give an object without addresses, never
// an exception: one odd object must not stop a watch.
import type { KubeKind, NodeRecord, PodRecord, ServiceRecord, SliceRecord } from './index.ts';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export interface Meta {
  readonly key: string;
  readonly resourceVersion: string | undefined;
}

/** The index key of an object: namespace/name (name for cluster-scoped objects). */
export function metaOf(o: unknown): Meta {
  const m = obj(obj(o)['metadata']);
  const name = str(m['name']) ?? '';
  const ns = str(m['namespace']);
  return { key: ns ? `${ns}/${name}` : name, resourceVersion: str(m['resourceVersion']) };
}

function podRecord(o: Obj): PodRecord {
  const m = obj(o['metadata']);
  const spec = obj(o['spec']);
  const status = obj(o['status']);
  const name = str(m['name']) ?? '';
  const phase = str(status['phase']);
  // A finished pod's address is free for a new pod; a hostNetwork pod's address is its node's.
  const ipsFree = phase === 'Succeeded' || phase === 'Failed' || spec['hostNetwork'] === true;
  const ips = ipsFree
    ? []
    : [
        ...new Set(
          [str(status['podIP']), ...arr(status['podIPs']).map((x) => str(obj(x)['ip']))].filter(
            (x): x is string => x !== undefined,
          ),
        ),
      ];
  return {
    uid: str(m['uid']) ?? '',
    name,
    namespace: str(m['namespace']) ?? '',
    node: str(spec['nodeName']),
    workload: workloadOf(m, name),
    ips,
  };
}

/** The controller owner; a ReplicaSet of a Deployment named by its Deployment (pod-template-hash cut off). */
function workloadOf(m: Obj, podName: string): string {
  const owner = arr(m['ownerReferences'])
    .map(obj)
    .find((r) => r['controller'] === true);
  const name = owner && str(owner['name']);
  if (!owner || !name) return podName;
  const hash = str(obj(m['labels'])['pod-template-hash']);
  if (owner['kind'] === 'ReplicaSet' && hash && name.endsWith(`-${hash}`))
    return name.slice(0, -hash.length - 1);
  return name;
}

function serviceRecord(o: Obj): ServiceRecord {
  const m = obj(o['metadata']);
  const spec = obj(o['spec']);
  const ips =
    spec['type'] === 'ExternalName'
      ? []
      : [
          ...new Set(
            [str(spec['clusterIP']), ...arr(spec['clusterIPs']).map(str)].filter(
              (x): x is string => x !== undefined && x !== 'None',
            ),
          ),
        ];
  return { name: str(m['name']) ?? '', namespace: str(m['namespace']) ?? '', ips };
}

function sliceRecord(o: Obj): SliceRecord {
  const m = obj(o['metadata']);
  const ns = str(m['namespace']) ?? '';
  const service = str(obj(m['labels'])['kubernetes.io/service-name']);
  const ips = service
    ? [
        ...new Set(
          arr(o['endpoints']).flatMap((e) =>
            arr(obj(e)['addresses'])
              .map(str)
              .filter((x): x is string => x !== undefined),
          ),
        ),
      ]
    : [];
  return { key: `${ns}/${str(m['name']) ?? ''}`, namespace: ns, service: service ?? '', ips };
}

function nodeRecord(o: Obj): NodeRecord {
  const m = obj(o['metadata']);
  const ips = [
    ...new Set(
      arr(obj(o['status'])['addresses'])
        .map(obj)
        .filter((a) => a['type'] === 'InternalIP' || a['type'] === 'ExternalIP')
        .map((a) => str(a['address']))
        .filter((x): x is string => x !== undefined),
    ),
  ];
  return { name: str(m['name']) ?? '', ips };
}

export function compact(kind: KubeKind, o: unknown): PodRecord | ServiceRecord | SliceRecord | NodeRecord {
  const v = obj(o);
  switch (kind) {
    case 'pods':
      return podRecord(v);
    case 'services':
      return serviceRecord(v);
    case 'endpointslices':
      return sliceRecord(v);
    case 'nodes':
      return nodeRecord(v);
  }
}

/** API paths of the four lists (cluster-wide). */
export const API_PATHS: Readonly<Record<KubeKind, string>> = {
  pods: '/api/v1/pods',
  services: '/api/v1/services',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  nodes: '/api/v1/nodes',
};
