// What every signal is attributed to: one network namespace, and the pod (if any) that owns it.
// Contract shared by pod discovery (producer), the probes and the OTel pipeline (consumers).
import { hostNetnsInode, hostNetnsPath, hostNetnsPid } from '../netns/setns.ts';

export type EntityKind = 'pod' | 'host' | 'netns';

export interface PodIdentity {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Pod IPs (v4 and v6), empty for hostNetwork pods. */
  readonly ips: readonly string[];
  readonly sandboxId: string;
  readonly hostNetwork: boolean;
  /** cgroup parent from the sandbox config (e.g. `/kubepods/besteffort/pod<uid>`), when known. */
  readonly cgroupParent?: string;
}

export interface Entity {
  readonly kind: EntityKind;
  /** Inode of the network namespace (`readlink /proc/<pid>/ns/net` → `net:[inode]`). */
  readonly netnsInode: number;
  /** A path that opens the netns: `/run/netns/<name>` or `/proc/<pid>/ns/net`. */
  readonly netnsPath: string;
  /** Name of a named netns (`/run/netns/NAME`), when it has one. */
  readonly netnsName?: string;
  /** A process living in the netns; `/proc/<pid>/net/*` shows this netns' view. */
  readonly pid?: number;
  /** The pod owning this netns (kind `pod`). hostNetwork pods never own an entity. */
  readonly pod?: PodIdentity;
  /** Host-side veth of the pod, from the CNI result, when known. */
  readonly hostVeth?: string;
  /** Human name for displays and logs: `namespace/name`, `host`, the netns name, or `pid 123 (comm)`. */
  readonly displayName: string;
}

/** The node's own netns (init's, receiver/netns/setns.ts): the one host entity every source lists. */
export const HOST_ENTITY: Entity = Object.freeze({
  kind: 'host',
  netnsInode: hostNetnsInode,
  netnsPath: hostNetnsPath,
  pid: hostNetnsPid,
  displayName: 'host',
});

export type EntityChange =
  | { readonly type: 'added'; readonly entity: Entity }
  | { readonly type: 'removed'; readonly entity: Entity }
  | { readonly type: 'updated'; readonly entity: Entity; readonly previous: Entity };

/** Read side of pod discovery, as probes and the pipeline see it. */
export interface EntitySource {
  /** Current entities, one per watched netns (the host netns included). */
  entities(): readonly Entity[];
  /** Entity by netns inode, if the netns is watched. */
  byNetns(inode: number): Entity | undefined;
  /** All pods seen, hostNetwork pods included (they map to the host entity). */
  pods(): readonly PodIdentity[];
  /** Subscribe to changes; returns an unsubscribe function. */
  onChange(listener: (changes: readonly EntityChange[]) => void): () => void;
}
