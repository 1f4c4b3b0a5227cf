// Capture benchmark (docs/capture.md#cost): how many packets/s `podnet capture` writes without loss at
// 64 B and 1,500 B datagrams, and what a running capture costs the captured traffic.
//
//   node benchmarks/capture/capture.ts [--quick]
//
// Loss-free rate: the sendmmsg generator (benchmarks/ebpf/udpflood.c) sends paced UDP datagrams from
// netns a to netns b for 2 s per step at rising rates, then unpaced; a CaptureSession (the code behind `podnet capture`) runs on the main thread in b with the
// filter 'udp port 7777' and writes pcapng to a file. A step is loss-free when every datagram sent is in
// the file (Wireshark's capinfos counts the file of the best step: an independent check) and the kernel dropped none.
// Cost: iperf3 TCP a → b for 4 s without and with a capture of that traffic (snaplen 128), same run; the
// ratio of throughputs and the capture's CPU. Exits non-zero when a check fails.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type CaptureResult, CaptureSession } from '../../receiver/capture/session.ts';
import { createNetnsPair, removeStaleNetns } from '../../test/env/netns.ts';
import { flood, removeFlood } from '../ebpf/flood.ts';
import { finish } from '../lib/finish.ts';
import { median } from '../lib/stats.ts';

const quick = process.argv.includes('--quick');
removeStaleNetns('pncb');
const pair = createNetnsPair({ prefix: 'pncb', ipv4Net: '10.252.0' });
const dir = mkdtempSync(`/tmp/pncb${process.pid}-`);
const fail: string[] = [];

/** Paced UDP a → b with the sendmmsg generator (benchmarks/ebpf/udpflood.c); rate 0 = as fast as it can. */
async function send(rate: number, size: number, seconds: number): Promise<{ sent: number; seconds: number }> {
  const count = rate > 0 ? rate * seconds : 300_000;
  return flood(pair.a.name, pair.b.ipv4, 7777, count, { size, rate });
}

async function capture<T>(
  filter: string,
  snaplen: number,
  file: string,
  during: () => Promise<T>,
): Promise<{ result: CaptureResult; value: T; cpuMs: number }> {
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(file);
  const c0 = process.cpuUsage();
  const s = new CaptureSession({
    netnsPath: pair.b.path,
    filter,
    snaplen,
    write: (b) => out.write(b),
    onDrain: (fn) => out.once('drain', fn),
  });
  const value = await during();
  await new Promise((r) => setTimeout(r, 100));
  const result = await s.stop();
  const c = process.cpuUsage(c0);
  await new Promise<void>((r) => out.end(() => r()));
  return { result, value, cpuMs: (c.user + c.system) / 1000 };
}

/** Packets in a file as Wireshark's capinfos counts them (it fails on a damaged file). */
function tsharkCount(file: string): number {
  const out = execFileSync('capinfos', ['-M', '-c', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /Number of packets:\s+(\d+)/.exec(out);
  if (!m) throw new Error(`capinfos ${file}: ${out}`);
  return Number(m[1]);
}

const lines: string[] = [];
const say = (s: string) => {
  lines.push(s);
  process.stderr.write(`${s}\n`);
};

async function lossFree(size: number): Promise<void> {
  // 0 = unpaced: the generator's own maximum on this machine
  const rates = quick ? [5_000, 20_000] : [50_000, 100_000, 200_000, 300_000, 500_000, 0];
  const seconds = quick ? 1 : 2;
  let best: { rate: number; pps: number; file: string; packets: number; usPerPacket: number } | undefined;
  const steps = [...rates];
  for (let i = 0; i < steps.length; i++) {
    const rate = steps[i]!;
    const file = join(dir, `lf-${size}-${rate}.pcapng`);
    const { result, value, cpuMs } = await capture('udp port 7777', 128, file, () =>
      send(rate, size, seconds),
    );
    const lost = value.sent - result.packets;
    const pps = Math.round(value.sent / value.seconds);
    const usPerPacket = (cpuMs * 1000) / Math.max(1, result.packets);
    say(
      `  ${size} B at ${rate || 'unpaced'} pps target: sent ${value.sent} (${pps} pps achieved), captured ${result.packets}, kernel drops ${result.kernelDrops}, lost ${lost}; capture CPU ${usPerPacket.toFixed(2)} µs/packet`,
    );
    if (lost === 0 && result.kernelDrops === 0 && (!best || pps > best.pps)) {
      if (best) rmSync(best.file, { force: true });
      best = { rate, pps, file, packets: result.packets, usPerPacket };
    } else rmSync(file, { force: true });
    if (lost > 0) break;
    if (rate > 0 && pps < rate * 0.9) {
      say(`  (the generator reached only ${pps} pps here: one unpaced step, then stop)`);
      if (!quick && steps[steps.length - 1] !== 0) steps.push(0);
      steps.splice(i + 1, steps.length - i - 2);
    }
  }
  if (!best) {
    fail.push(`${size} B: loss even at the lowest rate`);
    return;
  }
  const counted = tsharkCount(best.file);
  if (counted !== best.packets)
    fail.push(`${size} B: capinfos counts ${counted}, capture said ${best.packets}`);
  say(
    `${size} B datagrams: loss-free at ${best.pps} packets/s (capinfos counts ${counted} packets, ${statSync(best.file).size} bytes of pcapng); capture CPU ${best.usPerPacket.toFixed(2)} µs/packet, i.e. one core would keep up with ~${Math.round(1e6 / best.usPerPacket / 1000)}k packets/s`,
  );
}

async function iperf(seconds: number): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', pair.b.name, 'iperf3', '-s', '-1', '-p', '5299'], {
    stdio: 'ignore',
  });
  const serverExit = new Promise((r) => server.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  const out = await new Promise<string>((res, rej) => {
    const c = spawn(
      'ip',
      ['netns', 'exec', pair.a.name, 'iperf3', '-c', pair.b.ipv4, '-p', '5299', '-t', String(seconds), '-J'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let s = '';
    c.stdout.on('data', (d: Buffer) => {
      s += d.toString();
    });
    c.once('exit', (code) => (code === 0 ? res(s) : rej(new Error(`iperf3 exited ${code}`))));
  });
  await serverExit;
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second;
}

async function cost(): Promise<void> {
  // Alternating runs (without, with, without, ...) so that load from elsewhere on a shared machine hits
  // both sides alike; medians of each side.
  const seconds = quick ? 1 : 3;
  const rounds = quick ? 1 : 3;
  const base: number[] = [];
  const withCap: number[] = [];
  let packets = 0;
  let drops = 0;
  let cpu = 0;
  base.push(await iperf(seconds));
  for (let i = 0; i < rounds; i++) {
    const file = join(dir, 'iperf.pcapng');
    const r = await capture('tcp port 5299', 128, file, () => iperf(seconds));
    withCap.push(r.value);
    packets += r.result.packets;
    drops += r.result.kernelDrops;
    cpu += r.cpuMs;
    rmSync(file, { force: true });
    base.push(await iperf(seconds));
  }
  const b = median(base);
  const w = median(withCap);
  const g = (x: number) => (x / 1e9).toFixed(2);
  say(
    `iperf3 TCP a → b, ${seconds} s runs alternating: without capture ${base.map(g).join(', ')} Gbit/s (median ${g(b)}), while capturing it ${withCap.map(g).join(', ')} Gbit/s (median ${g(w)}): ratio ${(w / b).toFixed(3)}`,
  );
  say(
    `  the captures wrote ${packets} packets (${Math.round(packets / (seconds * rounds))} packets/s: GSO segments of up to 64 KiB, as the veth carries them; kernel drops ${drops}) using ${(cpu / (seconds * rounds) / 10).toFixed(1)}% of a CPU`,
  );
  if (packets === 0) fail.push('the iperf3 capture holds no packet');
}

try {
  say('## packet capture (benchmarks/capture/capture.ts)');
  for (const size of [64, 1500]) {
    say(`loss-free capture rate, ${size} B datagrams, snaplen 128, filter 'udp port 7777':`);
    await lossFree(size);
  }
  await cost();
} catch (err) {
  fail.push(String((err as Error).stack ?? err));
} finally {
  pair.cleanup();
  removeFlood();
  rmSync(dir, { recursive: true, force: true });
}
finish(lines.join('\n'), fail);
