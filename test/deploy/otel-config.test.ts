// otel-config/: every Collector config validates structurally (collector-schema.ts), says what it is for,
// lifts pod keys with groupbyattrs, and the Alloy variant parses and wires up. The negative cases prove the
// validators reject the mistakes they exist for.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { checkAlloy, parseAlloy } from './alloy.ts';
import { envReferences, validateCollectorConfig } from './collector-schema.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'otel-config');
const POD_KEYS = ['k8s.pod.uid', 'k8s.pod.name', 'k8s.namespace.name'];

type Config = {
  processors: Record<string, { keys?: string[] }>;
  exporters: Record<string, Record<string, unknown>>;
  service: { pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
};

const collectorFiles = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .filter((f) => /^service:/m.test(readFileSync(join(DIR, f), 'utf8')));

function load(f: string): { text: string; config: Config } {
  const text = readFileSync(join(DIR, f), 'utf8');
  return { text, config: parse(text) as Config };
}

function headerOf(text: string): string {
  const lines = text.split('\n');
  const end = lines.findIndex((l) => !l.startsWith('#'));
  return lines.slice(0, end).join('\n');
}

test('otel-config holds Collector configs and an Alloy variant', () => {
  assert.ok(collectorFiles.length >= 2, `collector configs: ${collectorFiles.join(', ')}`);
  assert.ok(readdirSync(join(DIR, 'alloy')).some((f) => f.endsWith('.alloy')));
});

for (const f of readdirSync(DIR).filter((x) => x.endsWith('.yaml'))) {
  test(`${f} starts with a header comment saying what it is for`, () => {
    const text = readFileSync(join(DIR, f), 'utf8');
    assert.match(text.split('\n')[0]!, /^# \S/);
    assert.match(headerOf(text), /what it is for/i);
  });
}

describe('Collector configs', () => {
  for (const f of collectorFiles) {
    test(`${f} validates against the Collector config structure`, () => {
      const { config } = load(f);
      assert.deepEqual(validateCollectorConfig(config), []);
    });

    test(`${f} documents every environment variable it reads`, () => {
      const { text, config } = load(f);
      const header = headerOf(text);
      const names = envReferences(config);
      assert.ok(names.size > 0);
      for (const n of names) assert.ok(header.includes(n), `${n} is not explained in the header`);
    });

    test(`${f} lifts exactly the pod keys to the Resource in every pipeline`, () => {
      const { config } = load(f);
      const pipelines = Object.entries(config.service.pipelines);
      assert.deepEqual(pipelines.map(([id]) => id).sort(), ['logs', 'metrics']);
      for (const [id, p] of pipelines) {
        const g = (p.processors ?? []).filter((x) => x.split('/')[0] === 'groupbyattrs');
        assert.equal(g.length, 1, `${id}: one groupbyattrs`);
        assert.deepEqual(config.processors[g[0]!]!.keys, POD_KEYS);
        assert.equal(p.receivers[0], 'otlp');
      }
    });

    test(`${f} keeps Prometheus names equal to the scrape path (units cleared before export)`, () => {
      const { config } = load(f);
      const metrics = config.service.pipelines['metrics']!;
      const procs = metrics.processors ?? [];
      const t = procs.findIndex((x) => x.startsWith('transform/'));
      assert.ok(t > procs.findIndex((x) => x.startsWith('groupbyattrs')), 'transform after groupbyattrs');
      const body = JSON.stringify(config.processors[procs[t]!]);
      assert.match(body, /set\(metric\.unit, \\"\\"\)/);
      for (const e of metrics.exporters) {
        const ex = config.exporters[e]!;
        if (e.startsWith('prometheus_remote_write')) {
          assert.equal(ex['add_metric_suffixes'], true);
          assert.deepEqual(ex['resource_to_telemetry_conversion'], { enabled: true });
        }
      }
    });
  }

  test('the validator rejects what the Collector would reject', () => {
    const base = () => structuredClone(load(collectorFiles[0]!).config) as Config & Record<string, unknown>;
    const messages = (c: unknown) => validateCollectorConfig(c).map((p) => `${p.path}: ${p.message}`);

    const typo = base();
    (typo.processors['batch'] as Record<string, unknown>)['send_batch_sise'] = 10;
    assert.ok(messages(typo).some((m) => m.startsWith('processors.batch') && /send_batch_sise/.test(m)));

    const missing = base();
    missing.service.pipelines['logs']!.exporters = ['otlp_http/nowhere'];
    assert.ok(messages(missing).some((m) => /'otlp_http\/nowhere' is not defined/.test(m)));

    const signal = base();
    const rw = Object.keys(signal.exporters).find((e) => e.startsWith('prometheus_remote_write'));
    if (rw) {
      signal.service.pipelines['logs']!.exporters.push(rw);
      assert.ok(messages(signal).some((m) => /does not support logs/.test(m)));
    }

    const order = base();
    order.service.pipelines['metrics']!.processors!.reverse();
    assert.ok(messages(order).some((m) => /memory_limiter must be first/.test(m)));
    assert.ok(messages(order).some((m) => /batch must be last/.test(m)));

    const unknown = base();
    unknown.processors['groupbyattr/pod'] = { keys: ['x'] };
    assert.ok(messages(unknown).some((m) => /unknown processors type 'groupbyattr'/.test(m)));

    const env = base();
    (env.exporters as Record<string, Record<string, unknown>>)['otlp_http/loki']!['endpoint'] =
      '$' + '{LOKI}';
    assert.ok(messages(env).some((m) => /bad reference/.test(m)));

    const ottl = base();
    const tr = Object.keys(ottl.processors).find((p) => p.startsWith('transform'))!;
    (ottl.processors[tr] as { metric_statements: Array<{ statements: string[] }> })
      .metric_statements[0]!.statements = ['set(metric.unit, "")) where'];
    assert.ok(messages(ottl).some((m) => /unbalanced/.test(m)));
  });

  test('deprecated component names are accepted as aliases', () => {
    const c = load(collectorFiles[0]!).config as Config & Record<string, unknown>;
    const text = JSON.stringify(c)
      .replaceAll('otlp_http/', 'otlphttp/')
      .replaceAll('prometheus_remote_write/', 'prometheusremotewrite/');
    assert.deepEqual(validateCollectorConfig(JSON.parse(text)), []);
  });
});

describe('Alloy variant', () => {
  const files = readdirSync(join(DIR, 'alloy')).filter((f) => f.endsWith('.alloy'));
  for (const f of files) {
    const src = readFileSync(join(DIR, 'alloy', f), 'utf8');
    test(`${f} says what it is for, parses and every reference resolves`, () => {
      assert.match(src.split('\n')[0]!, /^\/\/ \S/);
      assert.match(src, /What it is for/);
      assert.deepEqual(checkAlloy(parseAlloy(src)), []);
    });
    test(`${f} lifts the pod keys and clears units like the Collector configs`, () => {
      assert.match(
        src,
        /otelcol\.processor\.groupbyattrs "pod" \{\s*keys = \["k8s\.pod\.uid", "k8s\.pod\.name", "k8s\.namespace\.name"\]/,
      );
      assert.match(src, /set\(metric\.unit, ""\)/);
    });
    test(`${f}: the checker rejects broken wiring and syntax`, () => {
      const problems = (s: string) => {
        try {
          return checkAlloy(parseAlloy(s)).map((p) => p.message);
        } catch (e) {
          return [(e as Error).message];
        }
      };
      assert.ok(
        problems(
          src.replace('otelcol.processor.batch.default.input]', 'otelcol.processor.batch.defualt.input]'),
        ).some((m) => /names no declared component/.test(m)),
      );
      assert.ok(
        problems(src.replace('check_interval', 'check_intervall')).some((m) => /unknown argument/.test(m)),
      );
      assert.ok(problems(src.replace('keys = [', 'keys = (')).length > 0);
      assert.ok(problems(src.replace(/\}\s*$/, '')).some((m) => /missing '\}'|expected/.test(m)));
      assert.ok(problems(src.replace('.input]', '.output]')).some((m) => /exports no 'output'/.test(m)));
    });
  }
});
