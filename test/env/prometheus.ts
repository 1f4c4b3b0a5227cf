// A real Prometheus (Debian 2.42) for tests: started on a free loopback port with a private temp dir and a
// scrape config for the given targets, queried with PromQL over the HTTP API, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS_BIN = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';

export interface ScrapeTarget {
  readonly job: string;
  /** host:port */
  readonly target: string;
  readonly metricsPath?: string;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface PromRange {
  readonly metric: Record<string, string>;
  /** Timestamps in Unix seconds. */
  readonly samples: readonly { t: number; v: number }[];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export class Prometheus {
  readonly url: string;
  readonly dir: string;
  readonly #child: ChildProcess;
  #log = '';

  private constructor(child: ChildProcess, url: string, dir: string) {
    this.#child = child;
    this.url = url;
    this.dir = dir;
    child.stderr?.on('data', (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-20_000);
    });
  }

  get log(): string {
    return this.#log;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  static async start(targets: readonly ScrapeTarget[], scrapeInterval = '1s'): Promise<Prometheus> {
    if (!existsSync(PROMETHEUS_BIN))
      throw new Error(`${PROMETHEUS_BIN} not found: apt-get install prometheus`);
    const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-prom-`));
    const jobs = targets
      .map(
        (t) =>
          `  - job_name: ${JSON.stringify(t.job)}\n    metrics_path: ${JSON.stringify(t.metricsPath ?? '/metrics')}\n    static_configs:\n      - targets: [${JSON.stringify(t.target)}]`,
      )
      .join('\n');
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: ${scrapeInterval}\n  evaluation_interval: ${scrapeInterval}\nscrape_configs:\n${jobs}\n`,
    );
    let lastErr = '';
    for (let attempt = 0; attempt < 3; attempt++) {
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
      const p = new Prometheus(child, `http://127.0.0.1:${port}`, dir);
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && child.exitCode === null) {
        try {
          if ((await fetch(`${p.url}/-/ready`)).ok) return p;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      lastErr = p.log;
      await p.#kill();
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`prometheus did not become ready: ${lastErr}`);
  }

  /** An instant query, evaluated now or at `time` (Unix seconds). */
  async query(promql: string, time?: number): Promise<PromSample[]> {
    return (await this.#query(promql, time)).map((s) => ({ metric: s.metric, value: Number(s.value![1]) }));
  }

  /** The raw samples of a range selector (`name{...}[5s]`) at `time` (Unix seconds), per series. */
  async samples(selector: string, time: number): Promise<PromRange[]> {
    return (await this.#query(selector, time)).map((s) => ({
      metric: s.metric,
      samples: (s.values ?? []).map(([t, v]) => ({ t, v: Number(v) })),
    }));
  }

  async #query(promql: string, time: number | undefined) {
    const at = time === undefined ? '' : `&time=${time}`;
    const r = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}${at}`);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data?: {
        resultType: string;
        result: Array<{
          metric: Record<string, string>;
          value?: [number, string];
          values?: [number, string][];
        }>;
      };
    };
    if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error ?? r.status}`);
    return body.data?.result ?? [];
  }

  /** Poll `promql` until `pred` holds on its result. */
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
    throw new Error(`PromQL ${promql} never matched; last result ${JSON.stringify(last)}\n${this.#log}`);
  }

  async stop(): Promise<void> {
    await this.#kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #kill(): Promise<void> {
    const c = this.#child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}
