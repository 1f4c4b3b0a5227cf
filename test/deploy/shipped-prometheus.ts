// A real Prometheus (Debian's) running the shipped scrape job of deploy/prometheus/scrape-podnet.yaml.
// Debian's build has no Kubernetes service discovery, so the job's kubernetes_sd_configs is replaced by one
// static target carrying the `__meta_kubernetes_*` labels Kubernetes discovery would give a podnet pod; the
// job's relabeling then runs as written (keep the DaemonSet pods' metrics port, k8s_node_name from the
// node name, instance from the pod name). Started on a free loopback port, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort, PROMETHEUS_BIN, type PromSample } from '../env/prometheus.ts';

const SCRAPE = join(import.meta.dirname, '..', '..', 'deploy', 'prometheus', 'scrape-podnet.yaml');

export interface DiscoveredPod {
  /** host:port podnet listens on. */
  readonly target: string;
  readonly nodeName: string;
  readonly podName: string;
}

export class ShippedPrometheus {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  log = '';

  private constructor(child: ChildProcess, url: string, dir: string) {
    this.#child = child;
    this.url = url;
    this.#dir = dir;
    child.stderr?.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20_000);
    });
  }

  /** ruleFiles: rule files to load (evaluated every `interval`), e.g. the shipped alerts. */
  static async start(
    pods: readonly DiscoveredPod[],
    interval = '1s',
    ruleFiles: readonly string[] = [],
  ): Promise<ShippedPrometheus> {
    // biome-ignore lint/suspicious/noExplicitAny: prometheus.yml as plain data
    const config = parse(readFileSync(SCRAPE, 'utf8')) as any;
    config.global.scrape_interval = interval;
    if (ruleFiles.length > 0) {
      config.global.evaluation_interval = interval;
      config.rule_files = [...ruleFiles];
    }
    const job = config.scrape_configs[0];
    job.scrape_interval = interval;
    delete job.kubernetes_sd_configs;
    job.static_configs = pods.map((p) => ({
      targets: [p.target],
      labels: {
        __meta_kubernetes_pod_node_name: p.nodeName,
        __meta_kubernetes_pod_name: p.podName,
        __meta_kubernetes_pod_label_app_kubernetes_io_name: 'podnet',
        __meta_kubernetes_pod_container_port_name: 'metrics',
      },
    }));
    const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-prom-`));
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const p = new ShippedPrometheus(child, `http://127.0.0.1:${port}`, dir);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await fetch(`${p.url}/-/ready`)).ok) return p;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await p.stop();
    throw new Error(`prometheus did not become ready: ${p.log}`);
  }

  async query(promql: string): Promise<PromSample[]> {
    const r = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error ?? r.status}`);
    return (body.data?.result ?? []).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  async waitFor(
    promql: string,
    pred: (r: PromSample[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<PromSample[]> {
    const deadline = Date.now() + timeoutMs;
    let last: PromSample[] = [];
    while (Date.now() < deadline) {
      last = await this.query(promql);
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`PromQL ${promql} never matched; last ${JSON.stringify(last)}\n${this.log}`);
  }

  /** Active alerts (pending or firing) from the HTTP API. */
  async alerts(): Promise<Array<{ labels: Record<string, string>; state: string; value: string }>> {
    const r = await fetch(`${this.url}/api/v1/alerts`);
    const body = (await r.json()) as {
      status: string;
      data?: { alerts: Array<{ labels: Record<string, string>; state: string; value: string }> };
    };
    if (body.status !== 'success') throw new Error(`/api/v1/alerts: ${r.status}`);
    return body.data?.alerts ?? [];
  }

  async stop(): Promise<void> {
    const c = this.#child;
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
