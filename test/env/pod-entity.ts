// A synthetic pod entity for tests and benchmarks that need many pods without containerd (encoders,
// renderers, exports): pod i in namespace `shop`, no labels, no IPs.
import type { Entity } from '../../receiver/pods/entity.ts';

export function podEntity(i: number): Entity {
  return {
    kind: 'pod',
    netnsInode: 4026600000 + i,
    netnsPath: `/proc/${1000 + i}/ns/net`,
    displayName: `shop/web-${i}`,
    pod: {
      uid: `0b8f3c2e-1111-2222-3333-${String(i).padStart(12, '0')}`,
      name: `web-${i}`,
      namespace: 'shop',
      labels: {},
      ips: [],
      sandboxId: `sb${i}`,
      hostNetwork: false,
    },
  };
}
