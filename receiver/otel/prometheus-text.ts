// Prometheus text for /metrics: the output of the OTel JS PrometheusSerializer (default options: no prefix,
// no timestamps, scope labels, target_info), built several times faster, with one difference: metric names
// are those of the OTel→Prometheus translation with unit suffixes (prometheus-names.ts: `_bytes`,
// `_seconds`, `_total`), as Prometheus 3 and Mimir name the same data received over OTLP, and no `# UNIT`
// line (not part of the Prometheus text format; the unit is in the name). At node
// scale (tens of thousands of series per scrape) the SDK serializer costs ~14 µs per series because it
// re-sanitizes and re-escapes every label key and value with regular expressions on every scrape; here
// label keys are sanitized once (memoized) and values are escaped only when they contain a character
// that needs it. test/otel/prometheus-text.test.ts compares both outputs.
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  DataPointType,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { HistogramValue } from '../probe/types.ts';
import { ATTRIBUTE_PARTS, type AttributeParts } from './attribute-parts.ts';
import { StoreMetricData } from './metric-data.ts';
import { prometheusName } from './prometheus-names.ts';
import type { MetricSeries } from './series-state.ts';
import { type ChunkPool, Chunks } from './text-chunks.ts';

const keyCache = new Map<string, string>();
const NEEDS_ESCAPE = /[\\\n"]/;

function sanitizeName(name: string): string {
  return name.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
}

function labelKey(key: string): string {
  let k = keyCache.get(key);
  if (k === undefined) {
    k = sanitizeName(key);
    if (keyCache.size < 100_000) keyCache.set(key, k);
  }
  return k;
}

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelValue(v: AttributeValue | undefined | null): string {
  const s = v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return NEEDS_ESCAPE.test(s) ? escapeString(s).replace(/"/g, '\\"') : s;
}

/**
 * Label text of frozen attribute objects. The metric store hands every attribute-less series of one
 * entity the same frozen object (the entity keys), and probes share frozen point attributes between
 * points, so one scrape renders each once instead of once per series; the entry goes away with the
 * object.
 */
const frozenLabels = new WeakMap<Attributes, string>();

function labels(attrs: Attributes): string {
  if (Object.isFrozen(attrs)) {
    let l = frozenLabels.get(attrs);
    if (l === undefined) {
      l = labelText(attrs);
      frozenLabels.set(attrs, l);
    }
    return l;
  }
  return labelText(attrs);
}

/**
 * Label text of a point or series with these attribute parts (attribute-parts.ts): the two parts' texts
 * joined when they can be, else the text of `owner.attributes` (the merged object).
 */
function partsLabels(parts: AttributeParts | undefined, owner: { readonly attributes: Attributes }): string {
  if (parts === undefined || !parts[2]) return labels(owner.attributes);
  const p = labels(parts[0]);
  const e = labels(parts[1]);
  return p.length > 0 ? (e.length > 0 ? `${p},${e}` : p) : e;
}

function labelText(attrs: Attributes): string {
  let out = '';
  for (const key in attrs) {
    out += `${out.length > 0 ? ',' : ''}${labelKey(key)}="${labelValue(attrs[key])}"`;
  }
  return out;
}

function valueString(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return `${v}`;
}

/**
 * UTF-8 label text of frozen attribute objects (entity keys, shared point attributes), for lines written
 * from bytes (Chunks.labelled): each its own small array (a slice of Node's buffer pool would keep the
 * whole pool alive), gone with the object. ~300 B per entity.
 */
const frozenLabelBytes = new WeakMap<Attributes, Uint8Array>();
const EMPTY = new Uint8Array(0);

function utf8(s: string): Uint8Array {
  if (s.length === 0) return EMPTY;
  const b = Buffer.allocUnsafeSlow(Buffer.byteLength(s, 'utf8'));
  b.write(s, 0, 'utf8');
  return b;
}

function labelBytes(attrs: Attributes): Uint8Array {
  let b = frozenLabelBytes.get(attrs);
  if (b === undefined) {
    b = utf8(labelText(attrs));
    frozenLabelBytes.set(attrs, b);
  }
  return b;
}

/** Metric names and scope label texts as UTF-8 (few: bounded like the metadata cache). */
const nameBytes = new Map<string, Uint8Array>();
function cachedBytes(s: string): Uint8Array {
  let b = nameBytes.get(s);
  if (b === undefined) {
    b = utf8(s);
    if (nameBytes.size < 10_000) nameBytes.set(s, b);
  }
  return b;
}

function line(name: string, a: string, b: string, value: number): string {
  const l = a.length > 0 ? (b.length > 0 ? `${a},${b}` : a) : b;
  return l.length > 0 ? `${name}{${l}} ${valueString(value)}\n` : `${name} ${valueString(value)}\n`;
}

function promType(m: MetricData): string {
  switch (m.dataPointType) {
    case DataPointType.SUM:
      return m.isMonotonic ? 'counter' : 'gauge';
    case DataPointType.GAUGE:
      return 'gauge';
    case DataPointType.HISTOGRAM:
      return 'histogram';
    default:
      return 'untyped';
  }
}

function metricName(m: MetricData): string | undefined {
  const type =
    m.dataPointType === DataPointType.HISTOGRAM
      ? 'histogram'
      : m.dataPointType === DataPointType.SUM
        ? m.isMonotonic
          ? 'counter'
          : 'updowncounter'
        : 'gauge';
  const name = prometheusName(m.descriptor.name, m.descriptor.unit, type);
  return name === '' || /^_*$/.test(name) ? undefined : name;
}

interface Family {
  meta: { help: string; type: string } | undefined;
  /** Each metric with its scope's label text (rendered once per scope, not per metric). */
  metrics: Array<{ metric: MetricData; scope: string }>;
}

function serializeResource(resource: Resource, writeMetadata: boolean): string {
  const head = writeMetadata ? '# HELP target_info Target metadata\n# TYPE target_info gauge\n' : '';
  return `${head}${line('target_info', labels(resource.attributes as Attributes), '', 1).trim()}\n`;
}

function scopeLabels(scope: { name: string; version?: string; schemaUrl?: string }): string {
  let s = `otel_scope_name="${labelValue(scope.name)}"`;
  if (scope.schemaUrl) s += `,otel_scope_schema_url="${labelValue(scope.schemaUrl)}"`;
  if (scope.version) s += `,otel_scope_version="${labelValue(scope.version)}"`;
  return s;
}

/**
 * `# HELP` and `# TYPE` lines of a family: the same text scrape after scrape, kept (bounded). Looked up by
 * the help text, then the name: both are the same string objects every scrape (a metric's declaration,
 * prometheus-names.ts' cache), whose hashes V8 keeps, so a hit allocates nothing.
 */
const metadataCache = new Map<string, Map<string, { type: string; text: string }>>();
let metadataCached = 0;
function metadata(name: string, meta: { help: string; type: string }): string {
  let byName = metadataCache.get(meta.help);
  const hit = byName?.get(name);
  if (hit !== undefined && hit.type === meta.type) return hit.text;
  const text = `# HELP ${name} ${escapeString(meta.help || 'description missing')}\n# TYPE ${name} ${meta.type}\n`;
  if (metadataCached < 10_000) {
    if (byName === undefined) {
      byName = new Map();
      metadataCache.set(meta.help, byName);
    }
    byName.set(name, { type: meta.type, text });
    metadataCached++;
  }
  return text;
}

/** Lines of one histogram point (`a`: its label text). */
function writeHistogram(
  out: Chunks,
  name: string,
  a: string,
  extra: string,
  h: { readonly count: number; readonly sum?: number | undefined },
  boundaries: readonly number[],
  counts: readonly number[],
): void {
  out.add(line(`${name}_count`, a, extra, h.count));
  if (h.sum != null) out.add(line(`${name}_sum`, a, extra, h.sum));
  let cumulative = 0;
  let infinite = false;
  for (let i = 0; i < counts.length; i++) {
    cumulative += counts[i]!;
    const upper = boundaries[i];
    if (upper === undefined && infinite) break;
    if (upper === Number.POSITIVE_INFINITY) infinite = true;
    const le = upper === undefined || upper === Number.POSITIVE_INFINITY ? '+Inf' : String(upper);
    out.add(line(`${name}_bucket`, a, `${extra},le="${labelValue(le)}"`, cumulative));
  }
}

/**
 * Lines of data points [from, to) of one metric, every line ending in a newline: what the SDK's
 * serializeMetric returns (its text trimmed) followed by the newline serialize() adds, without the copy
 * trim() makes. A plain function called per slice of points (not a generator per metric: its object and
 * saved frame were a fifth of the render's garbage on a host's scrape).
 *
 * A store metric whose collection has made no data points (metric-data.ts StoreMetricData) is read from
 * its series, as the OTLP encoder does (protobuf/metric-writer.ts): no point object (nor histogram copy)
 * per series and scrape. Its points are read instead once they exist: the collection made them because
 * the series were about to change (a store update while a long exposition was streamed).
 */
function writePoints(
  out: Chunks,
  m: MetricData,
  extra: string,
  name: string,
  from: number,
  to: number,
): void {
  const hist = m.dataPointType === DataPointType.HISTOGRAM;
  if (!hist && m.dataPointType !== DataPointType.SUM && m.dataPointType !== DataPointType.GAUGE) return;
  if (m instanceof StoreMetricData && m.points === undefined) {
    const list: readonly MetricSeries[] = m.collection.series;
    for (let k = m.from + from, end = m.from + to; k < end; k++) {
      const s = list[k]!;
      if (!hist) {
        // The line from the parts' encoded label texts: no string per line.
        const parts = s.parts;
        if (parts?.[2] && Object.isFrozen(parts[0]) && Object.isFrozen(parts[1])) {
          out.labelled(
            cachedBytes(name),
            labelBytes(parts[0]),
            labelBytes(parts[1]),
            cachedBytes(extra),
            valueString(s.value as number),
          );
          continue;
        }
      }
      const a = partsLabels(s.parts, s as { attributes: Attributes });
      if (!hist) out.add(line(name, a, extra, s.value as number));
      else {
        const h = s.value as HistogramValue;
        writeHistogram(out, name, a, extra, h, h.boundaries, h.counts);
      }
    }
    return;
  }
  for (let k = from; k < to; k++) {
    const dp = m.dataPoints[k]!;
    const a = partsLabels((dp as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS], dp);
    if (!hist) out.add(line(name, a, extra, dp.value as number));
    else {
      const h = dp.value as Histogram;
      writeHistogram(out, name, a, extra, h, h.buckets.boundaries, h.buckets.counts);
    }
  }
}

/** Points written between two hand-outs of full chunks: bounds what a metric with many points holds. */
const SLICE = 256;

/**
 * Prometheus text exposition of `rm` as UTF-8 in chunks of about 64 KiB (served as they come: /metrics at
 * 1,000 pods is ~35 MB of text), the text of `new PrometheusSerializer().serialize(rm)` with the names above.
 * With a `pool`, the chunks' buffers are taken from it and the consumer gives each back when done with it
 * (text-chunks.ts); what is made between two hand-outs is at most SLICE points' lines.
 */
export function* renderPrometheus(rm: ResourceMetrics, pool?: ChunkPool): Generator<Buffer> {
  const families = new Map<string, Family>();
  families.set('target_info', { meta: { help: 'Target metadata', type: 'gauge' }, metrics: [] });
  for (const sm of rm.scopeMetrics) {
    const scope = scopeLabels(sm.scope);
    for (const metric of sm.metrics) {
      const name = metricName(metric);
      if (name === undefined) continue;
      const type = promType(metric);
      const fam = families.get(name);
      if (!fam) {
        families.set(name, {
          meta: { help: metric.descriptor.description, type },
          metrics: [{ metric, scope }],
        });
        continue;
      }
      if (!fam.meta) continue;
      if (fam.meta.type !== type) {
        fam.meta = undefined; // conflicting types: the family is dropped (as the SDK does)
        fam.metrics = [];
        continue;
      }
      fam.metrics.push({ metric, scope });
    }
  }
  for (const fam of families.values()) {
    if (!fam.meta) continue;
    for (const { metric } of fam.metrics) {
      const { description } = metric.descriptor;
      if (description && !fam.meta.help) fam.meta.help = description;
    }
  }
  // target_info (the first family) comes first: the Resource, then every metric.
  try {
    const out = new Chunks(pool);
    if (families.get('target_info')!.meta) out.add(serializeResource(rm.resource, true));
    let any = false;
    for (const [name, fam] of families) {
      if (!fam.meta) continue;
      let writeMetadata = name !== 'target_info';
      for (const { metric, scope } of fam.metrics) {
        if (writeMetadata) out.add(metadata(name, fam.meta));
        const t = metric.dataPointType;
        const n =
          t === DataPointType.SUM || t === DataPointType.GAUGE || t === DataPointType.HISTOGRAM
            ? metric instanceof StoreMetricData
              ? metric.to - metric.from
              : metric.dataPoints.length
            : 0;
        for (let i = 0; i < n; i += SLICE) {
          writePoints(out, metric, scope, name, i, Math.min(n, i + SLICE));
          if (out.full.length > 0) {
            yield* out.full;
            out.full.length = 0;
          }
        }
        // Nothing when the SDK skips the metric (no points, after the family's metadata was written).
        if (writeMetadata || n > 0) {
          any = true;
          writeMetadata = false;
        }
      }
    }
    if (!any) out.add('# no registered metrics');
    out.end(pool);
    yield* out.full;
  } finally {
    // Done (or abandoned: the client went away): the store's next update need not keep these values.
    for (const sm of rm.scopeMetrics)
      for (const m of sm.metrics) if (m instanceof StoreMetricData) m.collection.release();
  }
}

/** The whole text of renderPrometheus: `new PrometheusSerializer().serialize(rm)` with the names above. */
export function serializePrometheus(rm: ResourceMetrics): string {
  return Buffer.concat([...renderPrometheus(rm)]).toString('utf8');
}
