#!/usr/bin/env -S node --max-semi-space-size=1 --max-opt=2 --no-memory-reducer-favors-memory
// The `podnet` command: run | validate | probes | events | inspect | capture | completion. Structured logs (pino) go to stderr; stdout is
// for data (tables, JSON, event lines).
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import type { Agent } from '../agent/agent.ts';
import { ConfigError, loadConfigFile } from '../config/load.ts';
import { log } from '../log/logger.ts';
import { PODNET_VERSION } from '../otel/version.ts';
import { registerCapture } from './capture.ts';
import { completionScript, SHELLS, type Shell } from './completion.ts';
import { EventsPrinter, OUTPUT_FORMATS, type OutputFormat } from './events-view.ts';
import { formatProbeTable, probeTable } from './probes.ts';
import { type RemoteOptions, remoteGet, withRemoteOptions } from './remote.ts';

// `podnet events | head`: the reader went away; that is the end, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

function fail(message: string, code = 1): never {
  process.stderr.write(`podnet: ${message}\n`);
  process.exit(code);
}

const program = new Command()
  .name('podnet')
  .description('OpenTelemetry-native Pod network monitor: per-pod kernel network metrics and anomaly events')
  .version(PODNET_VERSION)
  .showHelpAfterError();

program
  .command('run')
  .description(
    'run the receiver (probes → OTLP / Prometheus / local server); reloads the config file on change',
  )
  .option('-c, --config <file>', 'YAML config file (default: the embedded default config)')
  .option(
    '--with-synthetic',
    'register the synthetic test probe (enable it in the config: probes.synthetic.enabled)',
  )
  .action(async (opts: { config?: string; withSynthetic?: boolean }) => {
    let agent: Agent;
    try {
      // imported here: the agent pulls in the whole OTel SDK and exporters, which `podnet probes` and
      // `validate` do not need (their start-up time matters in the 6.1 VM test, test/kernel/vm.test.ts)
      const { Agent } = await import('../agent/agent.ts');
      agent = await Agent.start({
        configPath: opts.config,
        ...(opts.withSynthetic ? { extraSpecs: [syntheticSpec] } : {}),
      });
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message, 2);
      fail(`cannot start: ${(err as Error).message ?? String(err)}`);
    }
    log.info({ config: agent.config.source, server: agent.serverUrl ?? null }, 'podnet running');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: flushing exporters');
      const force = setTimeout(() => {
        log.error('shutdown took longer than 15 s; exiting');
        process.exit(1);
      }, 15_000);
      force.unref();
      agent.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('validate')
  .description(
    'check a config file (and the OTEL_* environment) without running anything; exit 2 when invalid',
  )
  .requiredOption('-c, --config <file>', 'YAML config file')
  .option('--with-synthetic', 'accept the synthetic test probe in the config')
  .action((opts: { config: string; withSynthetic?: boolean }) => {
    try {
      const c = loadConfigFile(opts.config, {
        specs: [...probeSpecs, ...(opts.withSynthetic ? [syntheticSpec] : [])],
      });
      for (const w of c.warnings) process.stderr.write(`${opts.config}: warning: ${w.path}: ${w.message}\n`);
      const enabled = c.probes.filter((p) => p.enabled).map((p) => p.spec.name);
      process.stdout.write(
        `${opts.config}: ok (collection every ${c.collectionIntervalMs} ms; probes on: ${enabled.join(', ') || 'none'})\n`,
      );
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message, 2);
      throw err;
    }
  });

program
  .command('probes')
  .description(
    'list every probe: source, default, whether this host can run it and why not, its minimum kernel and the variant picked here',
  )
  .option('--json', 'print JSON instead of a table')
  .option('--with-synthetic', 'include the synthetic test probe')
  .action(async (opts: { json?: boolean; withSynthetic?: boolean }) => {
    const specs = [...probeSpecs, ...(opts.withSynthetic ? [syntheticSpec] : [])];
    const rows = await probeTable(specs);
    if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else process.stdout.write(formatProbeTable(rows));
  });

withRemoteOptions(
  program
    .command('events')
    .description(
      "print recent events from a running podnet's /events; --follow keeps streaming. -o table|wide for people, json (default) for tools",
    )
    .option('--pod <pod>', 'only events of this pod (namespace/name, name or uid)')
    .option('--name <event>', 'only events with this eventName, e.g. podnet.packet.drop')
    .option(
      '--peer <peer>',
      'only events whose peer is this pod or Service (namespace/name or name), node, netns or kind',
    )
    .option('-f, --follow', 'keep streaming new events')
    .addOption(
      new Option('-o, --output <format>', 'json (JSON lines), table, or wide (more columns)')
        .choices(OUTPUT_FORMATS)
        .default('json'),
    ),
).action(
  async (
    opts: RemoteOptions & {
      pod?: string;
      name?: string;
      peer?: string;
      follow?: boolean;
      output: OutputFormat;
    },
  ) => {
    const q = new URLSearchParams({ recent: '1', follow: opts.follow ? '1' : '0' });
    if (opts.pod) q.set('pod', opts.pod);
    if (opts.name) q.set('name', opts.name);
    if (opts.peer) q.set('peer', opts.peer);
    let res: Response;
    try {
      res = await remoteGet(opts, `/events?${q}`);
    } catch (err) {
      fail((err as Error).message);
    }
    if (!res.body) fail(`${opts.url}/events answered without a body`);
    const out = new EventsPrinter(opts.output, (s) => process.stdout.write(s));
    const text = new TextDecoder();
    for await (const chunk of res.body) out.push(text.decode(chunk, { stream: true }));
    out.end();
  },
);

withRemoteOptions(
  program
    .command('inspect')
    .description(
      'live terminal view of a running podnet: entities and their key metrics (sortable), recent events',
    )
    .option(
      '--interval <ms>',
      'refresh period in ms',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 100)
          throw new InvalidArgumentError('expected an integer number of ms >= 100');
        return n;
      },
      1000,
    ),
).action(async (opts: RemoteOptions & { interval: number }) => {
  const { runInspect } = await import('./inspect.ts');
  await runInspect(opts, opts.interval);
});

registerCapture(program);

program
  .command('completion')
  .description('print a shell completion script: source <(podnet completion bash)')
  .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
  .action((shell: Shell) => {
    process.stdout.write(completionScript(program, shell));
  });

await program.parseAsync(process.argv);
