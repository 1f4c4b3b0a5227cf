// OTel metric name → Prometheus metric name, exactly as the OTel→Prometheus translation does it with the
// `UnderscoreEscapingWithSuffixes` strategy (the OTel spec "Prometheus and OpenMetrics Compatibility";
// Prometheus 3 and Mimir OTLP ingestion, the Collector's prometheus and prometheusremotewrite exporters):
// the name split into tokens at every character outside [a-zA-Z0-9:], the unit appended as a token
// (`By` → `bytes`, `s` → `seconds`, `By/s` → `bytes_per_second`; annotations such as `{packet}` and `1`
// add nothing) unless the name has that token already, `total` moved to the end of monotonic counters,
// `ratio` appended to gauges of unit `1`, joined with `_`. So a dashboard query is the same whether the
// data was scraped from /metrics or pushed over OTLP into Prometheus or Mimir.

export type PrometheusMetricType = 'counter' | 'gauge' | 'histogram' | 'updowncounter';

const UNITS: Readonly<Record<string, string>> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '1': '',
  '%': 'percent',
};

const PER_UNITS: Readonly<Record<string, string>> = {
  s: 'second',
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  mo: 'month',
  y: 'year',
};

/** Characters outside [a-zA-Z0-9:] become `_`, runs of `_` one, a leading `_` goes. */
function cleanUpUnit(u: string): string {
  return u
    .replace(/[^a-zA-Z0-9:]/g, '_')
    .replace(/_{2,}/g, '_')
    .replace(/^_/, '');
}

/** The main and per-unit suffixes of an OTel (UCUM) unit: `By/s` → [`bytes`, `per_second`]. */
export function unitSuffixes(unit: string): [main: string, per: string] {
  const slash = unit.indexOf('/');
  const mainOtel = (slash < 0 ? unit : unit.slice(0, slash)).trim();
  let main = '';
  if (mainOtel !== '' && !/[{}]/.test(mainOtel)) main = UNITS[mainOtel] ?? mainOtel;
  let per = '';
  if (slash >= 0 && unit.slice(slash + 1) !== '') {
    const perOtel = unit.slice(slash + 1).trim();
    if (perOtel !== '' && !/[{}]/.test(perOtel)) per = PER_UNITS[perOtel] ?? perOtel;
    if (per !== '') per = `per_${per}`;
  }
  return [main, per];
}

/**
 * Translations kept by name, then unit and type: the strings are a metric's declaration, the same objects
 * at every call, whose hashes V8 keeps, so a hit allocates nothing (a concatenated key was garbage at
 * every metric of every scrape).
 */
const cache = new Map<string, Map<string, Partial<Record<PrometheusMetricType, string>>>>();
let cached = 0;

export function prometheusName(name: string, unit: string, type: PrometheusMetricType): string {
  let byUnit = cache.get(name);
  let byType = byUnit?.get(unit);
  const hit = byType?.[type];
  if (hit !== undefined) return hit;
  const out = translate(name, unit, type);
  if (cached < 100_000) {
    if (byUnit === undefined) {
      byUnit = new Map();
      cache.set(name, byUnit);
    }
    if (byType === undefined) {
      byType = {};
      byUnit.set(unit, byType);
    }
    byType[type] = out;
    cached++;
  }
  return out;
}

function translate(name: string, unit: string, type: PrometheusMetricType): string {
  let tokens = name.split(/[^a-zA-Z0-9:]+/).filter((t) => t !== '');
  const [mainRaw, perRaw] = unitSuffixes(unit);
  let main = cleanUpUnit(mainRaw);
  let per = cleanUpUnit(perRaw);
  if (tokens.includes(main)) main = '';
  if (per === 'per_') per = '';
  else {
    per = per.replace(/_$/, '');
    if (tokens.includes(per)) per = '';
  }
  if (per !== '') main = main.replace(/_$/, '');
  if (main !== '') tokens.push(main);
  if (per !== '') tokens.push(per);
  if (type === 'counter') tokens = [...tokens.filter((t) => t !== 'total'), 'total'];
  if (unit === '1' && type === 'gauge') tokens = [...tokens.filter((t) => t !== 'ratio'), 'ratio'];
  let out = tokens.join('_');
  if (out !== '' && out[0]! >= '0' && out[0]! <= '9') out = `_${out}`;
  return out;
}
