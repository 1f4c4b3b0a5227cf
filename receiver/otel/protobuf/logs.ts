// OTLP ExportLogsServiceRequest (opentelemetry/proto/collector/logs/v1), written straight from the compact
// record batches the event export worker receives (log-export-protocol.ts): no SDK LogRecord per event,
// no attribute object per event (the body text is written from the values: log-body.ts). The bytes are
// those the SDK's ProtobufLogsSerializer writes for the same records emitted through its LoggerProvider (the old path of
// log-export-worker.ts): same grouping (one ResourceLogs per entity Resource in first-seen order, one
// ScopeLogs), same field order and presence rules, same attribute order and value types — checked byte for
// byte in test/otel/protobuf/logs.test.ts. gRPC carries the same message bytes; OTLP/HTTP JSON keeps the
// SDK path.
//
// What repeats is encoded once and copied: the Resource of each entity, the scope, each attribute key
// (per table index), the two stack attributes of each stack, severity, event name and type.
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { AttributeValue } from '../../probe/types.ts';
import { eventBody, stackTrace } from '../event-body.ts';
import { attrKey, attrValue, KEY_EXTRA, KEY_INTERNED, type TableEntry } from '../log-export-protocol.ts';
import { ATTR_CODE_STACKTRACE, ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK } from '../semconv.ts';
import { SEVERITIES } from '../severity.ts';
import { anyNumber, anyValue, attributes, encoded, keyValueBody, stringField } from './anyvalue.ts';
import { BodyWriter, bodyRole, ROLE_NONE } from './log-body.ts';
import { WIRE_FIXED64 as F64, WIRE_LDELIM as LD, ProtoWriter, WIRE_VARINT as VI } from './writer.ts';

type Attrs = Readonly<Record<string, AttributeValue>>;

/** A run of records of one batch: `n` records from data offset `at`. */
export interface RecordRun {
  readonly data: Float64Array;
  /** The batch's attribute values that are neither numbers nor table strings (log-export-protocol.ts). */
  readonly extra: readonly unknown[];
  readonly table: readonly TableEntry[];
  readonly at: number;
  readonly n: number;
  /** observed_time_unix_nano of these records: when the worker received them, [s, ns]. */
  readonly observed: readonly [number, number];
}

export interface LogsEncoderOptions {
  /** The agent's Resource attributes; an entity's attributes are added after them. */
  readonly resource: Attrs;
  readonly schemaUrl?: string | undefined;
  readonly scopeName: string;
  readonly scopeVersion: string;
}

/** Where the record starting at data offset `at` ends (the next record's offset). */
export function recordEnd(data: Float64Array, at: number): number {
  return at + 8 + 2 * data[at + 7]!;
}

const RESERVED = new Set([ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK, ATTR_CODE_STACKTRACE]);
/**
 * Keys a record's object would not keep in arrival order: the ones set after the probe's, and array-index
 * keys (JavaScript orders those first). A record with one takes the object path.
 */
function reordered(key: string): boolean {
  return RESERVED.has(key) || (/^(0|[1-9][0-9]*)$/.test(key) && Number(key) < 2 ** 32 - 1);
}
/** Per table index: the KeyValue.key field (0: a reserved key), and the entry's role in the body text. */
interface TableKeys {
  readonly keys: (Uint8Array | 0 | undefined)[];
  readonly roles: number[];
  /** KeyValue.value (tag included) of a string attribute value in the table, once used as one. */
  readonly values: (Uint8Array | undefined)[];
}
/** Record buffers larger than this are not kept for reuse after a request. */
const POOLED_MAX = 4 << 20;
/** Request buffers kept for reuse (`release`): the exports in flight at once and the one being written. */
const REQUESTS_POOLED = 3;
/** Smaller request bytes are not kept (they may be a slice of Node's shared Buffer pool). */
const REQUEST_POOLED_MIN = 64 << 10;
/** Distinct event names and types cached; past it the caches start over (never expected). */
const NAMES_MAX = 10_000;

export class LogsEncoder {
  readonly #opts: LogsEncoderOptions;
  readonly #w = new ProtoWriter(1 << 20);
  /** The open request: per entity attribute set, its records' bytes (ScopeLogs.log_records fields). */
  readonly #open = new Map<object, ProtoWriter>();
  #openN = 0;
  /** Record buffers of sealed requests, for the next ones. */
  readonly #pool: ProtoWriter[] = [];
  /** Buffers of requests given back by `release`, for the next ones. */
  readonly #requests: Buffer[] = [];
  /** ResourceLogs.resource (tag included) and ResourceLogs.schema_url per entity attribute set. */
  readonly #resources = new WeakMap<object, { resource: Uint8Array; schemaUrl: Uint8Array }>();
  /** ScopeLogs.scope, tag included. */
  readonly #scope: Uint8Array;
  /** Per table: the KeyValue.key fields and body roles of its string entries (TableKeys). */
  readonly #keys = new WeakMap<readonly TableEntry[], TableKeys>();
  readonly #body = new BodyWriter();
  /** Per stack: the `podnet.kernel.stack` and `code.stacktrace` LogRecord.attributes fields. */
  readonly #stacks = new WeakMap<readonly string[], Uint8Array>();
  /** LogRecord fields per string: event_name (12), and the `podnet.event.type` attribute (6). */
  readonly #names = new Map<string, Uint8Array>();
  readonly #types = new Map<string, Uint8Array>();
  /** severity_number + severity_text per severity index. */
  readonly #severities: Uint8Array[];
  /** Generation stamps per key table index: duplicate keys within a record take the object path. */
  #seen = new Uint32Array(1024);
  #gen = 0;

  constructor(opts: LogsEncoderOptions) {
    this.#opts = opts;
    this.#scope = encoded((w) => {
      w.tag(1, LD);
      const s = w.fork();
      w.tag(1, LD);
      w.string(opts.scopeName);
      if (opts.scopeVersion) {
        w.tag(2, LD);
        w.string(opts.scopeVersion);
      }
      w.ldelim(s);
    });
    this.#severities = SEVERITIES.map((sev) =>
      encoded((w) => {
        if (sev.number !== 0) {
          w.tag(2, VI);
          w.uint32(sev.number);
        }
        if (sev.text) {
          w.tag(3, LD);
          w.string(sev.text);
        }
      }),
    );
  }

  /** The entity's Resource as the SDK path builds it (its attribute getter drops what it drops). */
  #resourceOf(entity: Attrs): { resource: Uint8Array; schemaUrl: Uint8Array } {
    let r = this.#resources.get(entity);
    if (r === undefined) {
      const o = this.#opts;
      const res: Resource = resourceFromAttributes(
        { ...o.resource, ...entity },
        o.schemaUrl !== undefined ? { schemaUrl: o.schemaUrl } : {},
      );
      r = {
        resource: encoded((w) => {
          w.tag(1, LD);
          const s = w.fork();
          attributes(w, res.attributes, 1);
          w.tag(2, VI);
          w.uint32(0);
          w.ldelim(s);
        }),
        schemaUrl: res.schemaUrl ? stringField(3, res.schemaUrl) : new Uint8Array(0),
      };
      this.#resources.set(entity, r);
    }
    return r;
  }

  /** Records added to the open request (not yet sealed by `finish`). */
  get pending(): number {
    return this.#openN;
  }

  /**
   * Encode the records of `run` into the open request, each into the byte buffer of its entity: the
   * records leave the JavaScript heap as they arrive (no record batch lives until the export), and the
   * request is framed around those buffers by `finish`.
   */
  add(run: RecordRun): void {
    const { data, table } = run;
    let at = run.at;
    for (let k = 0; k < run.n; k++) {
      const entity = table[data[at + 5]!] as Attrs;
      let g = this.#open.get(entity);
      if (g === undefined) {
        const w = this.#pool.pop() ?? new ProtoWriter(1024);
        w.reset();
        g = w;
        this.#open.set(entity, g);
      }
      this.#record(g, run, at, entity);
      this.#openN++;
      at = recordEnd(data, at);
    }
  }

  /**
   * Seal the open request: one ExportLogsServiceRequest of the records added since the last one, one
   * ResourceLogs per entity in the order the entities first came (as the SDK groups records by Resource
   * object), the records of each in the order they came. The bytes are the caller's (the encoder goes on
   * in a new buffer); empty when nothing was added.
   */
  finish(): Uint8Array {
    const w = this.#w;
    w.reset();
    for (const [entity, records] of this.#open) {
      const res = this.#resourceOf(entity as Attrs);
      w.tag(1, LD);
      const rl = w.fork();
      w.raw(res.resource);
      w.tag(2, LD);
      const sl = w.fork();
      w.raw(this.#scope);
      w.raw(records.view());
      w.ldelim(sl);
      w.raw(res.schemaUrl);
      w.ldelim(rl);
      if (records.buf.length <= POOLED_MAX) this.#pool.push(records);
    }
    this.#open.clear();
    this.#openN = 0;
    return w.detach(this.#requests.pop());
  }

  /**
   * Give back the bytes of a request `finish` returned, once nothing reads them any more (its export
   * succeeded): the next request is written into them. Without it every request (~5 MB at 8,192 records)
   * was a new buffer, and that much external memory per second made V8 run a full mark-compact every ~3
   * requests (benchmarks/otel/log-encode.ts).
   */
  release(bytes: Uint8Array): void {
    const size = bytes.buffer.byteLength;
    if (bytes.byteOffset !== 0 || size < REQUEST_POOLED_MIN) return; // may be Node's shared pool
    // A buffer much larger than what it held (a burst is over) is left to go: what stays kept follows the
    // requests' recent size, at most REQUESTS_POOLED of them.
    if (size > 4 * Math.max(bytes.length, REQUEST_POOLED_MIN)) return;
    if (this.#requests.length >= REQUESTS_POOLED) return;
    this.#requests.push(Buffer.from(bytes.buffer as ArrayBuffer));
  }

  /** One request of all records in `runs` (add + finish). */
  encode(runs: readonly RecordRun[]): Uint8Array {
    for (const r of runs) this.add(r);
    return this.finish();
  }

  /** ScopeLogs.log_records entry of the record at `at`. */
  #record(w: ProtoWriter, run: RecordRun, at: number, entity: Attrs): void {
    const { data, table, extra } = run;
    const end = recordEnd(data, at);
    const name = table[data[at]!] as string;
    const type = table[data[at + 1]!] as string;
    const stackIdx = data[at + 6]!;
    const stack = stackIdx >= 0 ? (table[stackIdx] as readonly string[]) : undefined;
    // One pass over the attributes: whether they can be written as they come (`plain`), and the values
    // the body text reads (log-body.ts).
    let plain = true;
    const { keys, roles, values } = this.#keysOf(table);
    const gen = this.#nextGen(table.length);
    const seen = this.#seen;
    const bw = this.#body;
    for (let k = at + 8; k < end; k += 2) {
      const idx = attrKey(data[k]!);
      if (seen[idx] === gen || keys[idx] === 0) plain = false;
      seen[idx] = gen;
      const role = roles[idx]!;
      if (role === ROLE_NONE) continue;
      if (data[k]! < KEY_EXTRA) bw.setNumber(role, data[k + 1]!);
      else bw.set(role, attrValue(data, k, table, extra));
    }
    // A key twice, or one of the keys set below: the object's semantics (last value, first position),
    // for the body text too (eventBody of the object).
    let attrs: Record<string, AttributeValue> | undefined;
    if (!plain) {
      bw.clear();
      attrs = {};
      for (let k = at + 8; k < end; k += 2)
        attrs[table[attrKey(data[k]!)] as string] = attrValue(data, k, table, extra);
    }
    w.tag(2, LD);
    const rec = w.fork(2); // most records are 128 B to 16 KiB
    w.tag(1, F64);
    w.fixed64Nanos(data[at + 3]!, data[at + 4]!);
    w.raw(this.#severities[data[at + 2]!]!);
    w.tag(5, LD);
    const body = w.fork();
    w.tag(1, LD);
    const text = w.fork();
    if (attrs === undefined) bw.write(w, name, type, entity, stack);
    else w.text(eventBody(name, type, attrs, entity, stack));
    w.ldelim(text);
    w.ldelim(body);
    if (attrs !== undefined) {
      attrs[ATTR_PODNET_EVENT_TYPE] = type;
      if (stack) {
        attrs[ATTR_PODNET_KERNEL_STACK] = stack;
        attrs[ATTR_CODE_STACKTRACE] = stackTrace(stack);
      }
      attributes(w, attrs, 6);
    } else {
      for (let k = at + 8; k < end; k += 2) {
        const key = data[k]!;
        const idx = attrKey(key);
        w.tag(6, LD);
        const kv = w.fork();
        let kb = keys[idx];
        if (kb === undefined) {
          const ks = table[idx] as string;
          kb = keys[idx] = reordered(ks) ? 0 : stringField(1, ks);
        }
        if (kb === 0) throw new Error('unreachable: reserved key on the plain path');
        w.raw(kb);
        if (key >= KEY_INTERNED) w.raw(this.#valueField(values, data[k + 1]!, table));
        else {
          w.tag(2, LD);
          const v = w.fork();
          if (key >= KEY_EXTRA) anyValue(w, extra[data[k + 1]!]);
          else anyNumber(w, data[k + 1]!);
          w.ldelim(v);
        }
        w.ldelim(kv);
      }
      w.raw(this.#typeField(type));
      if (stack) w.raw(this.#stackFields(stack));
    }
    w.tag(7, VI);
    w.uint32(0);
    w.tag(11, F64);
    w.fixed64Nanos(run.observed[0], run.observed[1]);
    if (name) w.raw(this.#nameField(name));
    w.ldelim(rec, 2);
  }

  #keysOf(table: readonly TableEntry[]): TableKeys {
    let k = this.#keys.get(table);
    if (k === undefined) {
      k = { keys: [], roles: [], values: [] };
      this.#keys.set(table, k);
    }
    // Reserved keys and body roles are known before the first record that uses them is written.
    const { keys, roles, values } = k;
    for (let i = keys.length; i < table.length; i++) {
      const e = table[i];
      const isKey = typeof e === 'string';
      keys.push(isKey && reordered(e) ? 0 : undefined);
      roles.push(isKey ? bodyRole(e) : ROLE_NONE);
      values.push(undefined);
    }
    return k;
  }

  #valueField(values: (Uint8Array | undefined)[], i: number, table: readonly TableEntry[]): Uint8Array {
    let f = values[i];
    if (f === undefined) {
      f = values[i] = encoded((w) => {
        w.tag(2, LD);
        const v = w.fork();
        anyValue(w, table[i] as string);
        w.ldelim(v);
      });
    }
    return f;
  }

  #nextGen(size: number): number {
    if (this.#seen.length < size) this.#seen = new Uint32Array(Math.max(size, 2 * this.#seen.length));
    this.#gen = (this.#gen + 1) >>> 0;
    if (this.#gen === 0) {
      this.#seen.fill(0);
      this.#gen = 1;
    }
    return this.#gen;
  }

  #typeField(type: string): Uint8Array {
    let f = this.#types.get(type);
    if (f === undefined) {
      if (this.#types.size >= NAMES_MAX) this.#types.clear();
      f = encoded((w) => {
        w.tag(6, LD);
        const s = w.fork();
        keyValueBody(w, ATTR_PODNET_EVENT_TYPE, type);
        w.ldelim(s);
      });
      this.#types.set(type, f);
    }
    return f;
  }

  #nameField(name: string): Uint8Array {
    let f = this.#names.get(name);
    if (f === undefined) {
      if (this.#names.size >= NAMES_MAX) this.#names.clear();
      f = stringField(12, name);
      this.#names.set(name, f);
    }
    return f;
  }

  #stackFields(stack: readonly string[]): Uint8Array {
    let f = this.#stacks.get(stack);
    if (f === undefined) {
      f = encoded((w) => {
        attributes(w, { [ATTR_PODNET_KERNEL_STACK]: stack, [ATTR_CODE_STACKTRACE]: stackTrace(stack) }, 6);
      });
      this.#stacks.set(stack, f);
    }
    return f;
  }
}
