// Entity (netns → pod) attributes put on every per-entity data point and log record.
// A point or event whose netns is 0 (counted in the kernel outside any watched netns) or whose netns is
// not (or no longer) known to the entity source is attributed to `podnet.entity.kind=unattributed`
// (with `podnet.netns.inode` when the inode is non-zero).
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { AttributeValue } from '../probe/types.ts';
import {
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_POD_LABEL_PREFIX,
  ATTR_K8S_POD_NAME,
  ATTR_K8S_POD_UID,
  ATTR_PODNET_ENTITY_KIND,
  ATTR_PODNET_NETNS_INODE,
  ATTR_PODNET_NETNS_NAME,
  ENTITY_KIND_UNATTRIBUTED,
} from './semconv.ts';

export function entityAttributes(
  entity: Entity | undefined,
  netns: number,
  labelAllowlist: readonly string[],
): Record<string, AttributeValue> {
  if (!entity) {
    const out: Record<string, AttributeValue> = { [ATTR_PODNET_ENTITY_KIND]: ENTITY_KIND_UNATTRIBUTED };
    if (netns !== 0) out[ATTR_PODNET_NETNS_INODE] = netns;
    return out;
  }
  const out: Record<string, AttributeValue> = {
    [ATTR_PODNET_ENTITY_KIND]: entity.kind,
    [ATTR_PODNET_NETNS_INODE]: entity.netnsInode,
  };
  if (entity.netnsName !== undefined) out[ATTR_PODNET_NETNS_NAME] = entity.netnsName;
  const pod = entity.pod;
  if (pod) {
    out[ATTR_K8S_POD_UID] = pod.uid;
    out[ATTR_K8S_POD_NAME] = pod.name;
    out[ATTR_K8S_NAMESPACE_NAME] = pod.namespace;
    for (const [key, v] of Object.entries(pod.labels))
      if (labelAllowed(key, labelAllowlist)) out[ATTR_K8S_POD_LABEL_PREFIX + key] = v;
  }
  return out;
}

/** `key` is in the allow-list: an exact key, or a prefix pattern ending in `*` (`app.kubernetes.io/*`). */
export function labelAllowed(key: string, allow: readonly string[]): boolean {
  for (const a of allow) {
    if (a.endsWith('*') ? key.startsWith(a.slice(0, -1)) : key === a) return true;
  }
  return false;
}

export function resolveEntity(source: EntitySource, netns: number | undefined): Entity | undefined {
  if (netns === undefined || netns === 0) return undefined;
  return source.byNetns(netns);
}
