// /metrics when the renderer throws, through the agent's own wiring (receiver/agent/server-control.ts
// agentServerSources on a LocalServer, the pipeline's Prometheus reader injected as the agent has it): the
// collection succeeds, then writing one series throws (its point's attributes cannot be read).
// - the series comes before anything was sent (a small exposition: read ahead whole): 500 with the text
//   `# failed to render metrics`, and one `log.warn({ err }, '/metrics failed')` carrying the error;
// - the series comes after the stream started (an exposition longer than the read-ahead): the response is
//   cut short (the client sees an incomplete body, not a 200 that looks whole), plain and gzip;
// - either way the store's collection is released (the renderer's `finally`), and the next scrape of a
//   healthy state is whole.
// Mutations checked: the catch in server-control.ts answering 200 fails the first test, not logging fails
// both, ending the response normally instead of destroying it (there and in text-response.ts) the second.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import type { LocalServer } from '../../receiver/server/server.ts';
import { WHOLE_MAX } from '../../receiver/server/text-response.ts';
import { directionStore, onCollectionRelease, startMetricsServer } from '../env/metrics-server.ts';
import { podEntity } from '../env/pod-entity.ts';

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'k8s.node.name': 'node-1' });

/** A counter with one point whose attributes throw when the renderer writes its labels. */
function throwingSeries(): MetricData {
  const point = {
    startTime: [1_750_000_000, 0],
    endTime: [1_750_000_001, 0],
    value: 1,
    get attributes(): never {
      throw new Error('boom: series cannot be written');
    },
  };
  return {
    descriptor: {
      name: 't.boom',
      description: 'boom',
      unit: '',
      valueType: 1 /* ValueType.DOUBLE (@opentelemetry/api) */,
    },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints: [point],
  } as unknown as MetricData;
}

let server: LocalServer;
let url: string;
/** What the injected collect serves: the store of `pods` pods, plus the throwing series when `boom`. */
const state = { pods: 1, boom: true };
let released = 0;
const warnings: { msg: string; err?: { message?: string } }[] = [];

async function collect(): Promise<CollectionResult> {
  const entities = Array.from({ length: state.pods }, (_, i) => podEntity(i));
  const store = directionStore(entities, 't.err.packets', (_, k) => k);
  const r = await store.collect();
  onCollectionRelease(r, () => released++);
  const scopeMetrics = r.resourceMetrics.scopeMetrics.map((sm, i) =>
    i === 0 && state.boom ? { ...sm, metrics: [...sm.metrics, throwingSeries()] } : sm,
  );
  return { ...r, resourceMetrics: { resource: AGENT, scopeMetrics } };
}

before(async () => {
  const log = pino(
    { level: 'warn' },
    { write: (line: string) => warnings.push(JSON.parse(line) as (typeof warnings)[number]) },
  );
  server = await startMetricsServer({ collect }, log);
  url = `${server.url}/metrics`;
});

after(async () => {
  await server?.close();
});

test('a series that throws before anything was sent: 500, the error logged with { err }', async () => {
  for (const encoding of ['identity', 'gzip']) {
    Object.assign(state, { pods: 1, boom: true });
    warnings.length = 0;
    released = 0;
    const res = await fetch(url, { headers: { 'accept-encoding': encoding } });
    assert.equal(res.status, 500, encoding);
    assert.equal(await res.text(), '# failed to render metrics\n');
    assert.deepEqual(
      warnings.map((w) => [w.msg, w.err?.message]),
      [['/metrics failed', 'boom: series cannot be written']],
    );
    assert.equal(released, 1, 'the collection is released');
  }
});

test('a series that throws after the stream started: the response is cut short, never a whole 200', async () => {
  // 200 pods × 32 series: ~1.5 MB of text before the throwing series, far more than the read-ahead.
  Object.assign(state, { pods: 200, boom: false });
  const whole = await (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).text();
  assert.ok(whole.length > 4 * WHOLE_MAX, `exposition ${whole.length} B`);
  for (const encoding of ['identity', 'gzip']) {
    Object.assign(state, { pods: 200, boom: true });
    warnings.length = 0;
    released = 0;
    const res = await fetch(url, { headers: { 'accept-encoding': encoding } });
    assert.equal(res.status, 200, 'headers went out before the series');
    await assert.rejects(res.text(), (err: Error) => err instanceof TypeError, `${encoding}: body cut short`);
    assert.deepEqual(
      warnings.map((w) => [w.msg, w.err?.message]),
      [['/metrics failed', 'boom: series cannot be written']],
    );
    assert.equal(released, 1, 'the collection is released');
  }
  // and the next scrape of a healthy state is whole
  Object.assign(state, { pods: 200, boom: false });
  assert.equal(await (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).text(), whole);
});
