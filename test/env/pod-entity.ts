// A synthetic pod entity for tests and benchmarks that need many pods without containerd (encoders,
// renderers, exports): pod i is `shop/web-i`, no labels, no IPs. A test that varies a field on purpose
// (escaping cases, a non-ASCII namespace, labels) names it in `opts`, so the variation reads at the call.
import type { Entity } from '../../receiver/pods/entity.ts';

export interface PodEntityOptions {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export function podEntity(i: number, opts: PodEntityOptions = {}): Entity {
  const namespace = opts.namespace ?? 'shop';
  const name = opts.name ?? `web-${i}`;
  return {
    kind: 'pod',
    netnsInode: 4026600000 + i,
    netnsPath: `/proc/${1000 + i}/ns/net`,
    displayName: `shop/web-${i}`,
    pod: {
      uid: opts.uid ?? `0b8f3c2e-1111-2222-3333-${String(i).padStart(12, '0')}`,
      name,
      namespace,
      labels: { ...opts.labels },
      ips: [],
      sandboxId: `sb${i}`,
      hostNetwork: false,
    },
  };
}
