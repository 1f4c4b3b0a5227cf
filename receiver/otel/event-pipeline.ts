// Probe events → OTel log records (LoggerProvider → bounded batch queue → OTLP, in the export worker: see
// log-export.ts and log-export-worker.ts), the live `/events` stream, the JSON-lines sink and the
// recent-events ring for the live view.
//
// Each record carries `eventName`, the severity (the event's own, else the definition's, else WARN), the
// probe's attributes, the entity keys (see entity-attributes.ts), `podnet.event.type` and, when stack
// capture is on, `podnet.kernel.stack` (string array). The timestamp is passed as HrTime `[s, ns]`: a
// number would be taken as milliseconds by the SDK.
import type { Logger } from '../log/logger.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { AttributeValue, EventDef, ProbeEvent, Severity } from '../probe/types.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import type { EventExport } from './log-export.ts';
import type { SelfTelemetry } from './self-telemetry.ts';
import { ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK } from './semconv.ts';
import { severityIndex } from './severity.ts';

/** One event as the live stream, the JSON-lines sink and `podnet events` show it. */
export interface EventRecord {
  /** ISO 8601 with ms. */
  readonly time: string;
  readonly timeUnixNano: string;
  readonly name: string;
  readonly type: string;
  readonly severity: Severity;
  readonly probe: string;
  /** Entity display name (`namespace/name`, `host`, netns name) or `unattributed`. */
  readonly entity: string;
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
  readonly stack: readonly string[] | undefined;
  rec?: EventRecord;
}

/** Entity attribute sets cached per netns; cleared past this many netns (unattributed inodes). */
const ENTITY_CACHE_MAX = 10_000;

export class EventPipeline {
  private _entities: EntitySource;
  private readonly _self: SelfTelemetry;
  private readonly _log: Logger | undefined;
  private _defs = new Map<string, RegisteredEvent & { probes: Set<string> }>();
  private _stacks = false;
  private _labelAllowlist: readonly string[] = [];
  private _export: EventExport | undefined;
  private readonly _subscribers = new Set<(r: EventRecord) => void>();
  /** Ring of the last `_recentMax` events (oldest at `_recentHead` once full). */
  private _recent: RecentEvent[] = [];
  private _recentHead = 0;
  private readonly _recentMax: number;
  private readonly _warned = new Set<string>();
  /** netns → the entity it resolved to and its frozen attribute set. */
  private _entityAttrs = new Map<
    number,
    { entity: Entity | undefined; attrs: Readonly<Record<string, AttributeValue>> }
  >();
  /** Total events handed in by probes. */
  emitted = 0;

  constructor(options: { entities: EntitySource; self: SelfTelemetry; log?: Logger; recent?: number }) {
    this._entities = options.entities;
    this._self = options.self;
    this._log = options.log;
    this._recentMax = options.recent ?? 200;
  }

  configure(options: {
    defs?: Iterable<RegisteredEvent>;
    stacks?: boolean;
    labelAllowlist?: readonly string[];
    entities?: EntitySource;
  }): void {
    if (options.defs) {
      const map = new Map<string, RegisteredEvent & { probes: Set<string> }>();
      for (const d of options.defs) {
        const prev = map.get(d.def.name);
        if (prev) prev.probes.add(d.probe);
        else map.set(d.def.name, { ...d, probes: new Set([d.probe]) });
      }
      this._defs = map;
    }
    if (options.stacks !== undefined) this._stacks = options.stacks;
    if (options.labelAllowlist) this._labelAllowlist = options.labelAllowlist;
    if (options.entities) this._entities = options.entities;
    if (options.labelAllowlist || options.entities) this._entityAttrs = new Map();
  }

  /** Where records go to be exported (the export worker); undefined when no log exporter is configured. */
  setExport(exp: EventExport | undefined): void {
    this._export = exp;
  }

  get exportsLogs(): boolean {
    return this._export !== undefined;
  }

  subscribe(fn: (r: EventRecord) => void): () => void {
    this._subscribers.add(fn);
    return () => this._subscribers.delete(fn);
  }

  /** The last events, oldest first. */
  recent(): readonly EventRecord[] {
    const r = this._recent;
    const out: EventRecord[] = [];
    for (let i = 0; i < r.length; i++) out.push(materialize(r[(this._recentHead + i) % r.length]!));
    return out;
  }

  /** The `ProbeContext.emit` of `probe`. Never throws, never blocks. */
  emit(probe: string, ev: ProbeEvent): void {
    this.emitted++;
    const reg = this._defs.get(ev.name);
    const declared = reg?.probes.has(probe) ?? false;
    if (!reg || !declared || !reg.enabled) {
      this._self.countEvents('suppressed');
      if (!declared) this._warnOnce(`probe ${probe} emitted undeclared event ${ev.name}`);
      return;
    }
    const netns = ev.netns ?? 0;
    const entity = resolveEntity(this._entities, netns);
    let cached = this._entityAttrs.get(netns);
    if (cached === undefined || cached.entity !== entity) {
      if (this._entityAttrs.size >= ENTITY_CACHE_MAX) this._entityAttrs = new Map();
      cached = { entity, attrs: Object.freeze(entityAttributes(entity, netns, this._labelAllowlist)) };
      this._entityAttrs.set(netns, cached);
    }
    const stack = this._stacks && ev.stack && ev.stack.length > 0 ? ev.stack : undefined;
    const severity = ev.severity ?? reg.def.severity ?? 'WARN';
    this._export?.push(
      ev.name,
      ev.type,
      severityIndex(severity),
      ev.timeUnixNano,
      cached.attrs,
      stack,
      ev.attributes,
    );
    if (this._recentMax === 0 && this._subscribers.size === 0) return;
    const re: RecentEvent = {
      probe,
      ev,
      severity,
      entityName: entity?.displayName ?? 'unattributed',
      entityAttrs: cached.attrs,
      stack,
    };
    if (this._recentMax > 0) {
      if (this._recent.length < this._recentMax) this._recent.push(re);
      else {
        this._recent[this._recentHead] = re;
        this._recentHead = (this._recentHead + 1) % this._recentMax;
      }
    }
    if (this._subscribers.size === 0) return;
    const rec = materialize(re);
    for (const fn of this._subscribers) {
      try {
        fn(rec);
      } catch (err) {
        this._log?.warn({ err }, 'event subscriber failed');
      }
    }
  }

  private _warnOnce(msg: string): void {
    if (this._warned.has(msg)) return;
    this._warned.add(msg);
    this._log?.warn(msg);
  }
}

function materialize(re: RecentEvent): EventRecord {
  if (re.rec) return re.rec;
  const ev = re.ev;
  const attributes: Record<string, AttributeValue> = {
    ...ev.attributes,
    ...re.entityAttrs,
    [ATTR_PODNET_EVENT_TYPE]: ev.type,
  };
  if (re.stack) attributes[ATTR_PODNET_KERNEL_STACK] = [...re.stack];
  const ms = Number(ev.timeUnixNano / 1_000_000n);
  re.rec = {
    time: new Date(ms).toISOString(),
    timeUnixNano: ev.timeUnixNano.toString(),
    name: ev.name,
    type: ev.type,
    severity: re.severity,
    probe: re.probe,
    entity: re.entityName,
    attributes,
    ...(re.stack ? { stack: re.stack } : {}),
  };
  return re.rec;
}

/** Does `rec` match the `/events` filters? `pod` matches `namespace/name`, the pod name or the uid. */
export function matchesFilter(
  rec: EventRecord,
  filter: { pod?: string | undefined; name?: string | undefined },
): boolean {
  if (filter.name && rec.name !== filter.name) return false;
  if (filter.pod) {
    const a = rec.attributes;
    const p = filter.pod;
    if (rec.entity !== p && a['k8s.pod.name'] !== p && a['k8s.pod.uid'] !== p) return false;
  }
  return true;
}
