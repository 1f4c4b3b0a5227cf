// The parts of OTLP metric messages below a Metric (data points, attributes, Resource, scope, timestamps),
// written in the field order of the SDK's serializer (@opentelemetry/otlp-transformer, metrics-serializer and
// common-serializer): what metrics.ts assembles into requests. Encoded once and reused: a Resource, a scope,
// a frozen attribute object.
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import { ProtoWriter, putDouble, putFixed64 } from './writer.ts';

/** Encoded attribute lists of frozen objects (KeyValue fields without their field tag's number fixed). */
const frozenAttrs: WeakMap<Attributes, Uint8Array>[] = [];
const resources = new WeakMap<Resource, Uint8Array>();
const scopes = new WeakMap<object, Uint8Array>();
export const scratch = new ProtoWriter(4096);

function anyValue(w: ProtoWriter, v: unknown): void {
  if (typeof v === 'string') {
    w.tag(1, 2);
    w.string(v);
  } else if (typeof v === 'boolean') {
    w.tag(2, 0);
    w.uint32(v ? 1 : 0);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
      w.tag(3, 0);
      w.int64(v);
    } else {
      w.tag(4, 1);
      w.double(v);
    }
  } else if (v instanceof Uint8Array) {
    w.tag(7, 2);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    w.tag(5, 2);
    const a = w.fork();
    for (const item of v) {
      w.tag(1, 2);
      const i = w.fork();
      anyValue(w, item);
      w.ldelim(i);
    }
    w.ldelim(a);
  } else if (typeof v === 'object' && v !== null) {
    w.tag(6, 2);
    const l = w.fork();
    keyValues(w, v as Attributes, 1);
    w.ldelim(l);
  }
}

function keyValues(w: ProtoWriter, attrs: Attributes, field: number): void {
  for (const key in attrs) {
    if (!Object.hasOwn(attrs, key)) continue;
    w.tag(field, 2);
    const kv = w.fork();
    w.tag(1, 2);
    w.string(key);
    w.tag(2, 2);
    const v = w.fork();
    anyValue(w, attrs[key] as AttributeValue);
    w.ldelim(v);
    w.ldelim(kv);
  }
}

/** `attrs` as repeated KeyValue field `field`; a frozen object is encoded once. */
function attributes(w: ProtoWriter, attrs: Attributes, field: number): void {
  const b = attributeBytes(attrs, field);
  if (b === undefined) keyValues(w, attrs, field);
  else w.raw(b);
}

/**
 * A frozen `attrs` as repeated KeyValue field `field`, encoded once (undefined: not frozen, it may change).
 * The last object asked for is checked first: a run of points often shares its point attributes (none).
 */
export function attributeBytes(attrs: Attributes, field: number): Uint8Array | undefined {
  if (attrs === lastAttrs && field === lastField) return lastBytes;
  if (!Object.isFrozen(attrs)) return undefined;
  let cache = frozenAttrs[field];
  if (cache === undefined) {
    cache = new WeakMap();
    frozenAttrs[field] = cache;
  }
  let b = cache.get(attrs);
  if (b === undefined) {
    scratch.reset();
    keyValues(scratch, attrs, field);
    b = scratch.finish();
    cache.set(attrs, b);
  }
  lastAttrs = attrs;
  lastField = field;
  lastBytes = b;
  return b;
}
let lastAttrs: Attributes | undefined;
let lastField = 0;
let lastBytes: Uint8Array | undefined;

/** ResourceMetrics field 1: the Resource message with its tag. */
export function resourceBytes(r: Resource): Uint8Array {
  let b = resources.get(r);
  if (b === undefined) {
    scratch.reset();
    scratch.tag(1, 2);
    const at = scratch.fork();
    if (r.attributes) keyValues(scratch, r.attributes, 1);
    scratch.tag(2, 0);
    scratch.uint32(0);
    scratch.ldelim(at);
    b = scratch.finish();
    resources.set(r, b);
  }
  return b;
}

/** ScopeMetrics field 1: the InstrumentationScope message with its tag. */
export function scopeBytes(s: ScopeMetrics['scope']): Uint8Array {
  let b = scopes.get(s);
  if (b === undefined) {
    scratch.reset();
    scratch.tag(1, 2);
    const at = scratch.fork();
    scratch.tag(1, 2);
    scratch.string(s.name);
    if (s.version) {
      scratch.tag(2, 2);
      scratch.string(s.version);
    }
    const extra = s as { attributes?: Attributes; droppedAttributesCount?: number };
    if (extra.attributes) keyValues(scratch, extra.attributes, 3);
    if (extra.droppedAttributesCount) {
      scratch.tag(4, 0);
      scratch.uint32(extra.droppedAttributesCount);
    }
    scratch.ldelim(at);
    b = scratch.finish();
    scopes.set(s, b);
  }
  return b;
}

/** HrTime as fixed64 nanoseconds (the SDK's writeHrTimeAsFixed64, without overflow past 2^53). */
export function hrTime(w: ProtoWriter, t: HrTime): void {
  const seconds = t[0];
  const nanos = t[1];
  const lo16 = (seconds & 0xffff) * 1e9;
  const hiBits = ((seconds / 65536) >>> 0) * 1e9;
  const low = (lo16 >>> 0) + (((hiBits & 0xffff) * 65536) >>> 0) + nanos;
  const high = Math.floor(lo16 / 4294967296) + ((hiBits / 65536) >>> 0) + Math.floor(low / 4294967296);
  w.fixed64Parts(low >>> 0, high >>> 0);
}

/**
 * The fixed64 nanoseconds of the last HrTime asked for (as `hrTime` writes them), computed again only when
 * it differs: the series of a probe's update share their time and most share their start time. `lo` and
 * `hi` are kept as signed int32 (the same bits): a uint32 at or above 2^31 is a heap number, boxed anew
 * each time it is read and passed on (putFixed64, per data point: two per point of garbage at 225,000
 * points per collection at 1,000 netns).
 */
export class TimeCode {
  #seconds = -1;
  #nanos = -1;
  lo = 0;
  hi = 0;

  of(t: HrTime): void {
    const seconds = t[0];
    const nanos = t[1];
    if (seconds === this.#seconds && nanos === this.#nanos) return;
    const lo16 = (seconds & 0xffff) * 1e9;
    const hiBits = ((seconds / 65536) >>> 0) * 1e9;
    const low = (lo16 >>> 0) + (((hiBits & 0xffff) * 65536) >>> 0) + nanos;
    this.lo = low | 0;
    this.hi = (Math.floor(lo16 / 4294967296) + ((hiBits / 65536) >>> 0) + Math.floor(low / 4294967296)) | 0;
    this.#seconds = seconds;
    this.#nanos = nanos;
  }
}

export function temporality(t: AggregationTemporality): number {
  return t === AggregationTemporality.DELTA ? 1 : t === AggregationTemporality.CUMULATIVE ? 2 : 0;
}

/**
 * A NumberDataPoint (with its tag) of a store series whose point attributes are encoded (`attrs`, field 7):
 * every other field is fixed-width, so its length is known before it is written (no fork/ldelim) and
 * it is written by byte stores; the times come from `start`/`end` (computed once per distinct time).
 * The bytes of `numberFields`.
 */
export function seriesNumberPoint(
  w: ProtoWriter,
  start: TimeCode,
  end: TimeCode,
  value: number,
  attrs: Uint8Array,
  int: boolean,
): void {
  const n = attrs.length;
  const len = 27 + n;
  w.ensure(len + 6);
  const b = w.buf;
  let p = w.pos;
  b[p++] = 0x0a; // field 1, length-delimited
  let v = len;
  while (v > 0x7f) {
    b[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[p++] = v;
  p = numberPointBody(b, p, start, end, value, int);
  if (n < 32) for (let i = 0; i < n; i++) b[p++] = attrs[i]!;
  else {
    b.set(attrs, p);
    p += n;
  }
  w.pos = p;
}

/**
 * The fixed-width fields of a NumberDataPoint — start and end time, the value as sfixed64 (`int`) or double
 * — at `p` of `b` (27 bytes, room made by the caller); returns the position after them.
 */
export function numberPointBody(
  b: Buffer,
  p: number,
  start: TimeCode,
  end: TimeCode,
  value: number,
  int: boolean,
): number {
  b[p] = 0x11; // field 2, fixed64
  putFixed64(b, p + 1, start.lo, start.hi);
  b[p + 9] = 0x19; // field 3, fixed64
  putFixed64(b, p + 10, end.lo, end.hi);
  p += 18;
  if (int) {
    b[p] = 0x31; // field 6, sfixed64
    // `| 0`, not `>>> 0`: the same 32 bits as a small integer, not a heap number (see TimeCode).
    if (value >= 0) putFixed64(b, p + 1, value | 0, (value / 4294967296) | 0);
    else {
      const abs = -value;
      let low = ~(abs >>> 0) >>> 0;
      let high = ~((abs / 4294967296) >>> 0) >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
      putFixed64(b, p + 1, low | 0, high | 0);
    }
  } else {
    b[p] = 0x21; // field 4, double
    putDouble(b, p + 1, value);
  }
  return p + 9;
}

/** sfixed64 of an integer-valued number (negative: two's complement, as the SDK's writeSfixed64). */
function sfixed64(w: ProtoWriter, v: number): void {
  if (v >= 0) {
    w.fixed64Parts(v >>> 0, (v / 4294967296) >>> 0);
    return;
  }
  const abs = Math.abs(v);
  let low = ~(abs >>> 0) >>> 0;
  let high = ~((abs / 4294967296) >>> 0) >>> 0;
  low = (low + 1) >>> 0;
  if (low === 0) high = (high + 1) >>> 0;
  w.fixed64Parts(low, high);
}

export function numberPoint(w: ProtoWriter, dp: DataPoint<unknown>, attrs: Attributes, int: boolean): void {
  numberFields(w, dp.startTime, dp.endTime, dp.value as number, attrs, int);
}

/** A NumberDataPoint (with its tag) from its fields: a data point object or a store series. */
export function numberFields(
  w: ProtoWriter,
  start: HrTime,
  end: HrTime,
  value: number,
  attrs: Attributes | undefined,
  int: boolean,
): void {
  w.tag(1, 2);
  const at = w.fork();
  w.tag(2, 1);
  hrTime(w, start);
  w.tag(3, 1);
  hrTime(w, end);
  if (int) {
    w.tag(6, 1);
    sfixed64(w, value);
  } else {
    w.tag(4, 1);
    w.double(value);
  }
  if (attrs) attributes(w, attrs, 7);
  w.ldelim(at);
}

export function histogramPoint(w: ProtoWriter, dp: DataPoint<unknown>, attrs: Attributes): void {
  const h = dp.value as Histogram;
  const b = h.buckets;
  histogramFields(w, dp.startTime, dp.endTime, h.count, h.sum, b.counts, b.boundaries, attrs, h.min, h.max);
}

/**
 * A HistogramDataPoint (with its tag) from its fields (an SDK Histogram's, or a store series'
 * HistogramValue's: no min and max).
 */
export function histogramFields(
  w: ProtoWriter,
  start: HrTime,
  end: HrTime,
  count: number,
  sum: number | undefined,
  counts: readonly number[],
  bounds: readonly number[],
  attrs: Attributes | undefined,
  min: number | undefined,
  max: number | undefined,
): void {
  w.tag(1, 2);
  const at = w.fork();
  w.tag(2, 1);
  hrTime(w, start);
  w.tag(3, 1);
  hrTime(w, end);
  w.tag(4, 1);
  w.fixed64(count);
  if (sum !== undefined) {
    w.tag(5, 1);
    w.double(sum);
  }
  if (counts.length > 0) {
    w.tag(6, 2);
    w.uint32(counts.length * 8);
    for (let i = 0; i < counts.length; i++) w.fixed64(counts[i]!);
  }
  if (bounds.length > 0) {
    w.tag(7, 2);
    w.uint32(bounds.length * 8);
    for (let i = 0; i < bounds.length; i++) w.double(bounds[i]!);
  }
  if (attrs) attributes(w, attrs, 9);
  if (min !== undefined) {
    w.tag(11, 1);
    w.double(min);
  }
  if (max !== undefined) {
    w.tag(12, 1);
    w.double(max);
  }
  w.ldelim(at);
}
