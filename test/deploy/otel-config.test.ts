// otel-config/: every Collector config validates structurally (collector-schema.ts), says what it is for,
// needs no groupbyattrs and no unit-clearing transform (podnet sends one Resource per entity, and names
// translate as on /metrics), batches in the exporters' sending_queue instead of the batch processor, uses no
// deprecated key; Mimir's native OTLP endpoint is the default path and remote write the alternative; the
// Alloy variant parses and wires up. The negative cases prove the validators reject the mistakes they exist
// for.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { checkAlloy, parseAlloy } from './alloy.ts';
import { envReferences, validateCollectorConfig } from './collector-schema.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'otel-config');

type Config = {
  processors: Record<string, Record<string, unknown>>;
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

    test(`${f}: no groupbyattrs, no unit transform, no batch processor; exporters batch in sending_queue`, () => {
      const { config } = load(f);
      const pipelines = Object.entries(config.service.pipelines);
      assert.deepEqual(pipelines.map(([id]) => id).sort(), ['logs', 'metrics']);
      for (const [id, p] of pipelines) {
        assert.equal(p.receivers[0], 'otlp');
        const types = (p.processors ?? []).map((x) => x.split('/')[0]);
        assert.equal(types[0], 'memory_limiter', `${id}: memory_limiter first`);
        for (const t of ['groupbyattrs', 'transform', 'batch'])
          assert.ok(!types.includes(t), `${id}: ${t} is not needed for podnet's output`);
        for (const e of p.exporters) {
          const ex = config.exporters[e]!;
          if (e.startsWith('otlp')) {
            const q = ex['sending_queue'] as
              | { enabled?: boolean; batch?: Record<string, unknown> }
              | undefined;
            assert.equal(q?.enabled, true, `${e}: sending_queue`);
            assert.ok(q?.batch?.['flush_timeout'], `${e}: sending_queue.batch`);
          }
        }
      }
      assert.doesNotMatch(JSON.stringify(config), /add_metric_suffixes|set\(metric\.unit/);
      for (const e of Object.keys(config.exporters))
        if (e.startsWith('prometheus_remote_write'))
          assert.deepEqual(config.exporters[e]!['resource_to_telemetry_conversion'], { enabled: true });
    });
  }

  test('Mimir over native OTLP is the default path; remote write the alternative', () => {
    const def = load('collector-mimir-loki.yaml');
    assert.ok(Object.keys(def.config.exporters).includes('otlp_http/mimir'));
    assert.match(headerOf(def.text), /otel-promote-resource-attributes=[^\n]*k8s\.pod\.name/);
    assert.match(headerOf(def.text), /podnet-collector/);
    const rw = load('collector-mimir-remote-write.yaml');
    assert.ok(Object.keys(rw.config.exporters).includes('prometheus_remote_write/mimir'));
  });

  test('the validator rejects what the Collector would reject', () => {
    const base = () =>
      structuredClone(load('collector-mimir-loki.yaml').config) as Config & Record<string, unknown>;
    const messages = (c: unknown) => validateCollectorConfig(c).map((p) => `${p.path}: ${p.message}`);

    const typo = base();
    (typo.processors['memory_limiter'] as Record<string, unknown>)['check_intervall'] = '1s';
    assert.ok(
      messages(typo).some((m) => m.startsWith('processors.memory_limiter') && /check_intervall/.test(m)),
    );

    const missing = base();
    missing.service.pipelines['logs']!.exporters = ['otlp_http/nowhere'];
    assert.ok(messages(missing).some((m) => /'otlp_http\/nowhere' is not defined/.test(m)));

    const signal = base();
    (signal.exporters as Record<string, unknown>)['prometheus_remote_write/x'] = {
      endpoint: 'http://m/push',
    };
    signal.service.pipelines['logs']!.exporters.push('prometheus_remote_write/x');
    assert.ok(messages(signal).some((m) => /does not support logs/.test(m)));

    const deprecated = base();
    (deprecated.exporters as Record<string, unknown>)['prometheus_remote_write/x'] = {
      endpoint: 'http://m/push',
      add_metric_suffixes: true,
    };
    deprecated.service.pipelines['metrics']!.exporters.push('prometheus_remote_write/x');
    assert.ok(messages(deprecated).some((m) => /add_metric_suffixes/.test(m)));

    const order = base();
    order.processors['batch'] = { timeout: '5s' };
    order.service.pipelines['metrics']!.processors = ['batch', 'memory_limiter'];
    assert.ok(messages(order).some((m) => /memory_limiter must be first/.test(m)));
    assert.ok(messages(order).some((m) => /batch must be last/.test(m)));

    const unknown = base();
    unknown.processors['groupbyattr/pod'] = { keys: ['x'] };
    assert.ok(messages(unknown).some((m) => /unknown processors type 'groupbyattr'/.test(m)));

    const env = base();
    (env.exporters as Record<string, Record<string, unknown>>)['otlp_http/loki']!['endpoint'] =
      '$' + '{LOKI}';
    assert.ok(messages(env).some((m) => /bad reference/.test(m)));

    const queue = base();
    (queue.exporters['otlp_http/mimir']!['sending_queue'] as { batch: Record<string, unknown> }).batch[
      'flush_timout'
    ] = '1s';
    assert.ok(messages(queue).some((m) => /flush_timout/.test(m)));

    const ottl = base();
    ottl.processors['transform/x'] = {
      metric_statements: [{ context: 'metric', statements: ['set(metric.unit, "")) where'] }],
    };
    ottl.service.pipelines['metrics']!.processors!.push('transform/x');
    assert.ok(messages(ottl).some((m) => /unbalanced/.test(m)));
  });

  test('deprecated component names are accepted as aliases', () => {
    const c = load('collector-mimir-remote-write.yaml').config as Config & Record<string, unknown>;
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
    test(`${f} needs no groupbyattrs and keeps the units (suffixed names, as the Collector configs)`, () => {
      assert.doesNotMatch(
        src,
        /otelcol\.processor\.groupbyattrs|otelcol\.processor\.transform|set\(metric\.unit/,
      );
      assert.doesNotMatch(src, /add_metric_suffixes\s*=\s*false/);
      assert.match(src, /resource_to_telemetry_conversion = true/);
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
      assert.ok(problems(src.replace('metrics = [', 'metrics = (')).length > 0);
      assert.ok(problems(src.replace(/\}\s*$/, '')).some((m) => /missing '\}'|expected/.test(m)));
      assert.ok(problems(src.replace('.input]', '.output]')).some((m) => /exports no 'output'/.test(m)));
    });
  }
});
