// Probe events → OTel log records (bounded batch queue → OTLP, in the export worker: see log-export.ts
// and log-export-worker.ts), the live `/events` stream, the JSON-lines sink and the recent-events ring for
// the live view.
//
// Each record carries `eventName`, the severity (the event's own, else the definition's, else WARN), a
// one-line body (event-body.ts), the probe's attributes, `podnet.event.type` and, when stack capture is on,
// `podnet.kernel.stack` (string array) and `code.stacktrace` (the same, one frame per line). Exported
// records carry the entity keys (entity-attributes.ts) on their Resource; the live view as attributes. The timestamp is passed as HrTime `[s, ns]`: a
// number would be taken as milliseconds by the SDK.
import type { Logger } from '../log/logger.ts';
import type { PeerResolver } from '../peers/resolver.ts';
import type { Peer } from '../peers/types.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { Attributes, AttributeValue, EventDef, ProbeEvent, Severity } from '../probe/types.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import { eventBody, stackTrace } from './event-body.ts';
import type { EventExport } from './log-export.ts';
import type { SelfTelemetry } from './self-telemetry.ts';
import { ATTR_CODE_STACKTRACE, ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK } from './semconv.ts';
import { severityIndex } from './severity.ts';

/** One event as the live stream, the JSON-lines sink and `podnet events` show it. */
export interface EventRecord {
  /** ISO 8601 with ms. */
  readonly time: string;
  readonly timeUnixNano: string;
  readonly name: string;
  readonly type: string;
  readonly severity: Severity;
  /** The one-line human text, as the log record's body (event-body.ts). */
  readonly body: string;
  readonly probe: string;
  /** Entity display name (`namespace/name`, `host`, netns name) or `unattributed`. */
  readonly entity: string;
  /** The other end of the tuple (`pod ns/name`, `service ns/name`, `host`, ...), when the event has one. */
  readonly peer?: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly stack?: readonly string[];
}

export interface RegisteredEvent {
  readonly def: EventDef;
  readonly probe: string;
  readonly enabled: boolean;
}

/** An event as kept for the live view: the EventRecord is built only when someone reads it. */
interface RecentEvent {
  readonly probe: string;
  readonly ev: ProbeEvent;
  readonly severity: Severity;
  readonly entityName: string;
  readonly entityAttrs: Readonly<Record<string, AttributeValue>>;
  readonly peer: Peer | undefined;
  readonly stack: readonly string[] | undefined;
  rec?: EventRecord;
}

/** Entity attribute sets cached per netns; cleared past this many netns (unattributed inodes). */
const ENTITY_CACHE_MAX = 10_000;

export class EventPipeline {
  #entities: EntitySource;
  readonly #self: SelfTelemetry;
  readonly #log: Logger | undefined;
  #defs = new Map<string, RegisteredEvent & { probes: Set<string> }>();
  #stacks = false;
  #labelAllowlist: readonly string[] = [];
  #export: EventExport | undefined;
  /** Peer identity of events with a tuple (receiver/peers). */
  #peers: PeerResolver | undefined;
  readonly #subscribers = new Set<(r: EventRecord) => void>();
  /** Ring of the last `_recentMax` events (oldest at `_recentHead` once full). */
  #recent: RecentEvent[] = [];
  #recentHead = 0;
  readonly #recentMax: number;
  readonly #warned = new Set<string>();
  /** netns → the entity it resolved to and its frozen attribute set. */
  #entityAttrs = new Map<
    number,
    { entity: Entity | undefined; attrs: Readonly<Record<string, AttributeValue>> }
  >();
  /** Sees each event before it is exported and may add attributes (triggered captures: podnet.capture.id). */
  #tap: ((ev: ProbeEvent, entity: Entity | undefined) => Attributes | undefined) | undefined;
  /** Total events handed in by probes. */
  emitted = 0;

  constructor(options: { entities: EntitySource; self: SelfTelemetry; log?: Logger; recent?: number }) {
    this.#entities = options.entities;
    this.#self = options.self;
    this.#log = options.log;
    this.#recentMax = options.recent ?? 200;
  }

  configure(options: {
    defs?: Iterable<RegisteredEvent>;
    stacks?: boolean;
    labelAllowlist?: readonly string[];
    entities?: EntitySource;
    peers?: PeerResolver | null;
  }): void {
    if (options.peers !== undefined) this.#peers = options.peers ?? undefined;
    if (options.defs) {
      const map = new Map<string, RegisteredEvent & { probes: Set<string> }>();
      for (const d of options.defs) {
        const prev = map.get(d.def.name);
        if (prev) prev.probes.add(d.probe);
        else map.set(d.def.name, { ...d, probes: new Set([d.probe]) });
      }
      this.#defs = map;
    }
    if (options.stacks !== undefined) this.#stacks = options.stacks;
    if (options.labelAllowlist) this.#labelAllowlist = options.labelAllowlist;
    if (options.entities) this.#entities = options.entities;
    if (options.labelAllowlist || options.entities) this.#entityAttrs = new Map();
  }

  /** Where records go to be exported (the export worker); undefined when no log exporter is configured. */
  setExport(exp: EventExport | undefined): void {
    this.#export = exp;
  }

  get exportsLogs(): boolean {
    return this.#export !== undefined;
  }

  setTap(fn: ((ev: ProbeEvent, entity: Entity | undefined) => Attributes | undefined) | undefined): void {
    this.#tap = fn;
  }

  subscribe(fn: (r: EventRecord) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** The last events, oldest first. */
  recent(): readonly EventRecord[] {
    const r = this.#recent;
    const out: EventRecord[] = [];
    for (let i = 0; i < r.length; i++) out.push(materialize(r[(this.#recentHead + i) % r.length]!));
    return out;
  }

  /** The `ProbeContext.emit` of `probe`. Never throws, never blocks. */
  emit(probe: string, ev: ProbeEvent): void {
    this.emitted++;
    const reg = this.#defs.get(ev.name);
    const declared = reg?.probes.has(probe) ?? false;
    if (!reg || !declared || !reg.enabled) {
      this.#self.countEvents('suppressed');
      if (!declared) this.#warnOnce(`probe ${probe} emitted undeclared event ${ev.name}`);
      return;
    }
    const netns = ev.netns ?? 0;
    const entity = resolveEntity(this.#entities, netns);
    let cached = this.#entityAttrs.get(netns);
    if (cached === undefined || cached.entity !== entity) {
      if (this.#entityAttrs.size >= ENTITY_CACHE_MAX) this.#entityAttrs = new Map();
      cached = { entity, attrs: Object.freeze(entityAttributes(entity, netns, this.#labelAllowlist)) };
      this.#entityAttrs.set(netns, cached);
    }
    if (this.#tap) {
      const extra = this.#tap(ev, entity);
      if (extra) ev = { ...ev, attributes: { ...ev.attributes, ...extra } };
    }
    const peer = this.#peers?.forEvent(ev.attributes, entity, netns, ev.name);
    const stack = this.#stacks && ev.stack && ev.stack.length > 0 ? ev.stack : undefined;
    const severity = ev.severity ?? reg.def.severity ?? 'WARN';
    this.#export?.push(
      ev.name,
      ev.type,
      severityIndex(severity),
      ev.timeUnixNano,
      cached.attrs,
      stack,
      ev.attributes,
      peer?.attributes,
    );
    if (this.#recentMax === 0 && this.#subscribers.size === 0) return;
    const re: RecentEvent = {
      probe,
      ev,
      severity,
      entityName: entity?.displayName ?? 'unattributed',
      entityAttrs: cached.attrs,
      peer,
      stack,
    };
    if (this.#recentMax > 0) {
      if (this.#recent.length < this.#recentMax) this.#recent.push(re);
      else {
        this.#recent[this.#recentHead] = re;
        this.#recentHead = (this.#recentHead + 1) % this.#recentMax;
      }
    }
    if (this.#subscribers.size === 0) return;
    const rec = materialize(re);
    for (const fn of this.#subscribers) {
      try {
        fn(rec);
      } catch (err) {
        this.#log?.warn({ err }, 'event subscriber failed');
      }
    }
  }

  #warnOnce(msg: string): void {
    if (this.#warned.has(msg)) return;
    this.#warned.add(msg);
    this.#log?.warn(msg);
  }
}

function materialize(re: RecentEvent): EventRecord {
  if (re.rec) return re.rec;
  const ev = re.ev;
  const attributes: Record<string, AttributeValue> = {
    ...ev.attributes,
    ...re.entityAttrs,
    ...re.peer?.attributes,
    [ATTR_PODNET_EVENT_TYPE]: ev.type,
  };
  if (re.stack) {
    attributes[ATTR_PODNET_KERNEL_STACK] = [...re.stack];
    attributes[ATTR_CODE_STACKTRACE] = stackTrace(re.stack);
  }
  const ms = Number(ev.timeUnixNano / 1_000_000n);
  re.rec = {
    time: new Date(ms).toISOString(),
    timeUnixNano: ev.timeUnixNano.toString(),
    name: ev.name,
    type: ev.type,
    severity: re.severity,
    // The probe's attributes and the peer keys, as the exported record's body sees them (log-export.ts
    // sends the peer keys after the probe's): `(other end: pod ns/name)` in both.
    body: eventBody(
      ev.name,
      ev.type,
      re.peer ? { ...ev.attributes, ...re.peer.attributes } : ev.attributes,
      re.entityAttrs,
      re.stack,
    ),
    probe: re.probe,
    entity: re.entityName,
    ...(re.peer ? { peer: re.peer.display } : {}),
    attributes,
    ...(re.stack ? { stack: re.stack } : {}),
  };
  return re.rec;
}

const jsonLines = new WeakMap<EventRecord, string>();
/**
 * `rec` as one JSON line (with its newline), serialized once however many `/events` followers and sinks
 * write it.
 */
export function eventJsonLine(rec: EventRecord): string {
  let line = jsonLines.get(rec);
  if (line === undefined) {
    line = `${JSON.stringify(rec)}\n`;
    jsonLines.set(rec, line);
  }
  return line;
}

/**
 * Does `rec` match the `/events` filters? `pod` matches `namespace/name`, the pod name or the uid; `peer`
 * the peer's kind, its pod or Service as `namespace/name` or name, or its node or netns name.
 */
export function matchesFilter(
  rec: EventRecord,
  filter: { pod?: string | undefined; name?: string | undefined; peer?: string | undefined },
): boolean {
  if (filter.peer && !peerMatches(rec.attributes, filter.peer)) return false;
  if (filter.name && rec.name !== filter.name) return false;
  if (filter.pod) {
    const a = rec.attributes;
    const p = filter.pod;
    if (rec.entity !== p && a['k8s.pod.name'] !== p && a['k8s.pod.uid'] !== p) return false;
  }
  return true;
}

function peerMatches(a: Readonly<Record<string, AttributeValue>>, p: string): boolean {
  const ns = a['podnet.peer.k8s.namespace.name'];
  for (const k of ['podnet.peer.k8s.pod.name', 'podnet.peer.k8s.service.name']) {
    const v = a[k];
    if (v !== undefined && (v === p || `${ns}/${v}` === p)) return true;
  }
  return (
    a['podnet.peer.kind'] === p || a['podnet.peer.k8s.node.name'] === p || a['podnet.peer.netns.name'] === p
  );
}
