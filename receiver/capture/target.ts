// What a capture runs in: a pod's netns (found through the entity registry), a named netns, or the
// host's. The same resolution serves the CLI (its own short-lived registry) and the server (the agent's).
import { existsSync } from 'node:fs';
import { hostNetnsPath } from '../netns/setns.ts';
import type { Entity, EntitySource, PodIdentity } from '../pods/entity.ts';

export type TargetSpec =
  | { readonly kind: 'pod'; readonly ref: string }
  | { readonly kind: 'netns'; readonly name: string }
  | { readonly kind: 'host' };

export interface ResolvedTarget {
  readonly netnsPath: string;
  /** `pod ns/name`, `netns NAME`, `host`: goes into the file's section comment and logs. */
  readonly description: string;
  readonly pod?: PodIdentity;
}

export class TargetError extends Error {
  readonly status: number;
  constructor(message: string, status = 404) {
    super(message);
    this.name = 'TargetError';
    this.status = status;
  }
}

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A pod by `namespace/name`, uid, or a name that is unique on this node. */
export function findPod(
  source: Pick<EntitySource, 'entities' | 'pods'>,
  ref: string,
): { pod: PodIdentity; entity: Entity | undefined } | undefined {
  const pods = source.pods();
  let matches = pods.filter((p) => `${p.namespace}/${p.name}` === ref || p.uid === ref);
  if (matches.length === 0 && !ref.includes('/')) matches = pods.filter((p) => p.name === ref);
  if (matches.length !== 1) {
    if (matches.length > 1)
      throw new TargetError(
        `pod name ${ref} is ambiguous (${matches.map((p) => `${p.namespace}/${p.name}`).join(', ')}); use namespace/name`,
        400,
      );
    return undefined;
  }
  const pod = matches[0]!;
  const entity = source.entities().find((e) => e.pod?.uid === pod.uid);
  return { pod, entity };
}

/** Resolves a target against an entity source (the agent's registry, or the CLI's own). */
export function resolveTarget(
  spec: TargetSpec,
  source: Pick<EntitySource, 'entities' | 'pods'>,
): ResolvedTarget {
  switch (spec.kind) {
    case 'host':
      return { netnsPath: hostNetnsPath, description: 'host' };
    case 'netns': {
      if (!NETNS_NAME.test(spec.name))
        throw new TargetError(`netns name ${JSON.stringify(spec.name)} is not a name under /run/netns`, 400);
      const path = `/run/netns/${spec.name}`;
      if (!existsSync(path)) throw new TargetError(`no network namespace ${path}`);
      return { netnsPath: path, description: `netns ${spec.name}` };
    }
    case 'pod': {
      const found = findPod(source, spec.ref);
      if (!found) throw new TargetError(`no pod ${spec.ref} on this node (as the CRI runtime lists them)`);
      const { pod, entity } = found;
      const description = `pod ${pod.namespace}/${pod.name}`;
      // hostNetwork pods share the host's netns: their traffic is the node's
      if (pod.hostNetwork)
        return { netnsPath: hostNetnsPath, description: `${description} (hostNetwork)`, pod };
      if (!entity) throw new TargetError(`pod ${spec.ref} has no network namespace yet`, 503);
      return { netnsPath: entity.netnsPath, description, pod };
    }
  }
}
