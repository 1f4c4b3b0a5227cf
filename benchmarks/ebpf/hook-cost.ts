// Kernel time per hook hit, from BPF_STATS_RUN_TIME (run_time_ns / run_cnt of each program), for the
// packetloss handler (tp_btf/kfree_skb) and the sockoverflow UDP handler (tp_btf/udp_fail_queue_rcv_skb),
// and the tcpreset handlers (tp_btf/tcp_send_reset, tp_btf/tcp_receive_reset) with closed-port connects,
// with events suppressed by the rate limit (counter path), every hit an event, and every hit an event
// with a kernel stack; plus a netns that is not watched (counted under 0). The "no stack" rows pass
// stacks: false (the probes capture stacks by default since 2026-12-06). The "paced" rows send drops at
// PACED_RATE/s, slow enough for the reader to keep up: the case where a submit pays the reader's wake-up
// (irq_work) for every event unless the reader delays its drain (receiver/bpf/ringbuf.ts, wakeDelayMs).
// tcpretrans under connection churn (benchmarks/ebpf/conn-churn.ts: connect / 64 B each way / close, client
// in a netns not watched, server in the watched one): runs per connection, ns per run and per connection
// of each of its programs (rt_state runs on every inet socket state change of the host), and the loop's
// own CPU per connection (client + server, user and system µs) with the probe off and on, interleaved,
// CHURN_ROUNDS rounds, the order alternating (off then on, on then off, ...); the summary rows give on - off
// for each order, their mean, half their gap (the order effect) and the off/off and on/on spreads (the noise).
//   node benchmarks/ebpf/hook-cost.ts [HITS]
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { enableRunTimeStats, programInfo } from '../../receiver/bpf/stats.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { tcpFixture } from '../../test/ebpf/env.ts';
import { createNetnsPair, removeStaleNetns } from '../../test/env/netns.ts';
import { watchNewPrograms } from '../lib/bpf-stats.ts';
import { type Churn, startChurn } from './conn-churn.ts';
import { flood, floodBinary, removeFlood } from './flood.ts';

const HITS = Number(process.argv[2] ?? 300_000);
/** Drops per second of the paced rows, and how many (a few seconds' worth). */
const PACED_RATE = 5000;
const PACED_HITS = Math.min(HITS, 20_000);
/** Connections per churn run. */
const CONNS = Math.min(HITS, 20_000);
/** Churn rounds with the server's netns watched, each one run per arm, the order alternating (even). */
const CHURN_ROUNDS = 4;

interface Row {
  probe: string;
  program: string;
  config: string;
  hits: number;
  nsPerHit: number;
}

async function measure(
  name: string,
  config: string,
  create: () => Promise<Probe<unknown>>,
  run: () => Promise<void>,
  rows: Row[],
): Promise<void> {
  const stats = enableRunTimeStats();
  const before = new Set(loadedProgFds());
  const probe = await create();
  const fds = loadedProgFds().filter((fd) => !before.has(fd));
  const base = new Map(fds.map((fd) => [fd, programInfo(fd)]));
  await run();
  for (const fd of fds) {
    const a = base.get(fd)!;
    const b = programInfo(fd);
    const hits = b.runCount - a.runCount;
    if (hits < 1000) continue;
    rows.push({
      probe: name,
      program: b.name,
      config,
      hits,
      nsPerHit: Math.round((b.runTimeNs - a.runTimeNs) / hits),
    });
  }
  await probe.close();
  stats.close();
}

/**
 * The churn loop's on − off CPU per connection for each order of the rounds (the mean of the rounds' own
 * differences), their mean over both orders (a drift or a first-run effect that favours whichever arm runs
 * second cancels there, the orders being equally many), half their gap (that effect's size), and the
 * off/off and on/on spreads (the noise the differences are read against).
 */
function churnSummary(
  cpu: readonly { arm: 'off' | 'on'; order: string; userUsPerConn: number; sysUsPerConn: number }[],
): Record<string, unknown>[] {
  const r2 = (x: number) => Number(x.toFixed(2));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  const delta = (order: string) => {
    const off = cpu.filter((c) => c.order === order && c.arm === 'off');
    const on = cpu.filter((c) => c.order === order && c.arm === 'on');
    return {
      user: mean(on.map((c, i) => c.userUsPerConn - off[i]!.userUsPerConn)),
      sys: mean(on.map((c, i) => c.sysUsPerConn - off[i]!.sysUsPerConn)),
      rounds: on.length,
    };
  };
  const a = delta('off-on');
  const b = delta('on-off');
  const arm = (x: 'off' | 'on') => cpu.filter((c) => c.arm === x);
  const orderRow = (order: string, d: typeof a) => ({
    probe: 'tcpretrans',
    config: `conn churn CPU on - off, ${order} rounds`,
    rounds: d.rounds,
    userUsPerConn: r2(d.user),
    sysUsPerConn: r2(d.sys),
  });
  return [
    orderRow('off-on', a),
    orderRow('on-off', b),
    {
      probe: 'tcpretrans',
      config: 'conn churn CPU on - off, both orders',
      userUsPerConn: r2((a.user + b.user) / 2),
      sysUsPerConn: r2((a.sys + b.sys) / 2),
      orderEffectSysUs: r2((a.sys - b.sys) / 2),
      offSpreadSysUs: r2(spread(arm('off').map((c) => c.sysUsPerConn))),
      onSpreadSysUs: r2(spread(arm('on').map((c) => c.sysUsPerConn))),
    },
  ];
}

/** fds of this process that are BPF programs (anon_inode:bpf-prog). */
function loadedProgFds(): number[] {
  const out: number[] = [];
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${f}`) === 'anon_inode:bpf-prog') out.push(Number(f));
    } catch {}
  }
  return out;
}

// Netns prefix: PODNET_BENCH_PREFIX (default pna), a unique one per concurrent user of the machine.
const PREFIX = process.env['PODNET_BENCH_PREFIX'] ?? 'pna';
removeStaleNetns(PREFIX);
floodBinary();
const pair = createNetnsPair({ prefix: PREFIX, tag: 'hc' });
const children: ChildProcess[] = [];
const rows: Row[] = [];
const churnRows: Record<string, unknown>[] = [];
let churn: Churn | undefined;
try {
  const b = pair.b;
  const entity: Entity = { kind: 'netns', netnsInode: b.inode, netnsPath: b.path, displayName: b.name };
  const ctx = (entities: Entity[]) => ({
    log: childLogger('bench-hook-cost'),
    entities: new StaticEntitySource(entities),
    emit: () => {},
  });
  const pl =
    (args: Record<string, unknown>, entities = [entity]) =>
    () =>
      packetlossProbe.create(
        ctx(entities),
        packetlossProbe.args.parse({ excludeLocations: [], ...args }),
      ) as Promise<Probe<unknown>>;
  const drops = async () => {
    await flood(b.name, '127.0.0.1', 9, HITS);
  };
  await measure(
    'packetloss',
    'counter only (events rate limited)',
    pl({ rateLimit: 1, rateWindowMs: 600000 }),
    drops,
    rows,
  );
  await measure(
    'packetloss',
    'counter + event, no stack',
    pl({ rateLimit: 0, stacks: false, ringBytes: 8 << 20 }),
    drops,
    rows,
  );
  await measure(
    'packetloss',
    `counter + event, no stack, paced ${PACED_RATE}/s`,
    pl({ rateLimit: 0, stacks: false }),
    async () => {
      await flood(b.name, '127.0.0.1', 9, PACED_HITS, { rate: PACED_RATE });
    },
    rows,
  );
  await measure(
    'packetloss',
    'counter + event + stack',
    pl({ rateLimit: 0, stacks: true, ringBytes: 8 << 20 }),
    drops,
    rows,
  );
  await measure(
    'packetloss',
    'netns not watched (key 0), rate limited',
    pl({ rateLimit: 1, rateWindowMs: 600000 }, []),
    drops,
    rows,
  );

  const sink = await tcpFixture(b, ['udpsink', '7200', '1']);
  children.push(sink.child);
  const so = (args: Record<string, unknown>) => () =>
    sockoverflowProbe.create(ctx([entity]), sockoverflowProbe.args.parse(args)) as Promise<Probe<unknown>>;
  const overflow = async () => {
    await flood(b.name, '127.0.0.1', 7200, HITS);
  };
  await measure(
    'sockoverflow',
    'counter only (events rate limited)',
    so({ rateLimit: 1, rateWindowMs: 600000 }),
    overflow,
    rows,
  );
  await measure(
    'sockoverflow',
    'counter + event, no stack',
    so({ rateLimit: 0, stacks: false, ringBytes: 8 << 20 }),
    overflow,
    rows,
  );
  await measure(
    'sockoverflow',
    'counter + event + stack',
    so({ rateLimit: 0, stacks: true, ringBytes: 8 << 20 }),
    overflow,
    rows,
  );

  // tcpreset: closed-port connects (a SYN in, a reset out: tcp_send_reset in b, tcp_receive_reset in a)
  const rs = (args: Record<string, unknown>) => () =>
    tcpresetProbe.create(
      ctx([
        entity,
        { ...entity, netnsInode: pair.a.inode, netnsPath: pair.a.path, displayName: pair.a.name },
      ]),
      tcpresetProbe.args.parse(args),
    ) as Promise<Probe<unknown>>;
  const refused = async () => {
    const n = Math.min(HITS, 5000);
    for (let base = 0; base < n; base += 2500) {
      await tcpFixture(
        pair.a,
        ['refused', b.ipv4, '7201', String(Math.min(2500, n - base)), String(20000 + base)],
        120000,
      );
    }
  };
  await measure(
    'tcpreset',
    'counter only (events rate limited)',
    rs({ rateLimit: 1, rateWindowMs: 600000 }),
    refused,
    rows,
  );
  await measure('tcpreset', 'counter + event, no stack', rs({ rateLimit: 0, stacks: false }), refused, rows);
  await measure('tcpreset', 'counter + event + stack', rs({ rateLimit: 0, stacks: true }), refused, rows);

  // tcpretrans: connection churn, probe off and on interleaved after a warm-up run. The rounds alternate
  // the order (off then on, on then off, ...): with one order only, drift over the run and the first churn
  // after the probe loads count against one arm (2026-12-07 22:47: +9.6 / +11.6 µs system per connection
  // off then on, where an alternated check gave +1 to +6 µs); the per-order means make that effect visible.
  churn = await startChurn(pair.a, b, 7300);
  await churn.run(Math.min(CONNS, 2000));
  const cpu: { arm: 'off' | 'on'; order: string; userUsPerConn: number; sysUsPerConn: number }[] = [];
  const runArm = async (arm: 'off' | 'on', round: number, order: string) => {
    const c = await churn!.run(CONNS);
    cpu.push({ arm, order, ...c });
    churnRows.push({
      probe: 'tcpretrans',
      config: `conn churn CPU, tcpretrans ${arm}, round ${round} (${order})`,
      conns: CONNS,
      userUsPerConn: Number(c.userUsPerConn.toFixed(2)),
      sysUsPerConn: Number(c.sysUsPerConn.toFixed(2)),
    });
  };
  // watched: the server's netns (b) in rounds 1..CHURN_ROUNDS; the last round watches nothing (every run is
  // the early exit of a socket in a netns not watched, what the host's other connections pay)
  for (let round = 1; round <= CHURN_ROUNDS + 1; round++) {
    const watchedRound = round <= CHURN_ROUNDS;
    const offFirst = round % 2 === 1;
    const order = offFirst ? 'off-on' : 'on-off';
    if (watchedRound && offFirst) await runArm('off', round, order);
    const stats = enableRunTimeStats();
    let probe: Probe<unknown> | undefined;
    const read = await watchNewPrograms(async () => {
      probe = (await tcpretransProbe.create(
        ctx(watchedRound ? [entity] : []),
        tcpretransProbe.args.parse({}),
      )) as Probe<unknown>;
    });
    if (watchedRound) await runArm('on', round, order);
    else await churn.run(CONNS);
    const progs = read();
    await probe!.close();
    stats.close();
    if (watchedRound && !offFirst) await runArm('off', round, order);
    for (const p of progs) {
      if (p.runs === 0) continue;
      churnRows.push({
        probe: 'tcpretrans',
        program: p.name,
        config: watchedRound
          ? `conn churn, server netns watched, round ${round}`
          : 'conn churn, no netns watched',
        conns: CONNS,
        runsPerConn: Number((p.runs / CONNS).toFixed(2)),
        nsPerRun: Math.round(p.runTimeNs / p.runs),
        nsPerConn: Math.round(p.runTimeNs / CONNS),
      });
    }
    // a churn that did not reach rt_state measured nothing (probe not attached, or the loop broken)
    if (!progs.some((p) => p.name === 'rt_state' && p.runs >= CONNS))
      throw new Error(`tcpretrans churn: rt_state ran ${JSON.stringify(progs)} for ${CONNS} connections`);
  }
  churnRows.push(...churnSummary(cpu));
} finally {
  churn?.close();
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  pair.cleanup();
  removeFlood();
}
for (const r of [...rows, ...churnRows]) console.log(JSON.stringify(r));
process.exit(0);
