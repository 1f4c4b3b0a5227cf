// Real pods (private containerd + CRI, test/env/cri) discovered by the CRI entity registry: drops and
// resets between two pods are counted under the pods' netns (== the kernel counters of that pod) and
// every event is attributed to the right pod.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { M as PL, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { M as RS, tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { Probe, ProbeEvent } from '../../receiver/probe/types.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { sumPoints, waitFor } from './env.ts';

const FIXTURE = new URL('./fixtures/traffic.ts', import.meta.url).pathname;
let env: CriEnv | undefined;
let reg: EntityRegistry | undefined;
const probes: Probe<unknown>[] = [];

before(async () => {
  env = await startCriEnv();
  reg = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 60_000 });
});
after(async () => {
  for (const p of probes) await p.close();
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

function snmp(pid: number, group: string, field: string): number {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${group}:`));
  const i = lines[0]!.split(/\s+/).indexOf(field);
  return Number(lines[1]!.split(/\s+/)[i]);
}

/** Runs the traffic fixture inside a pod's netns (nsenter --net), returns its JSON line. */
async function inPod(pod: TestPod, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, process.execPath, FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 0, `fixture ${args.join(' ')} in pod ${pod.name}`);
  return JSON.parse(out.split('\n')[0]!) as Record<string, unknown>;
}

test('two real pods: closed-port SYNs and UDP → NOSOCK and NO_SOCKET in the server pod, equal to its kernel counters', async () => {
  const e = env!;
  const r = reg!;
  const server = await e.runPod({ name: 'pna-server', namespace: 'pna' });
  const client = await e.runPod({ name: 'pna-client', namespace: 'pna' });
  await r.start();
  assert.equal(r.byNetns(server.netnsInode)?.pod?.name, 'pna-server');
  const events: ProbeEvent[] = [];
  const ctx = { log: childLogger('test-ebpf-pods'), entities: r, emit: (ev: ProbeEvent) => events.push(ev) };
  const pl = await packetlossProbe.create(ctx, packetlossProbe.args.parse({ rateLimit: 0 }));
  probes.push(pl as Probe<unknown>);
  const rs = await tcpresetProbe.create(ctx, tcpresetProbe.args.parse({ rateLimit: 0 }));
  probes.push(rs as Probe<unknown>);

  const rst0 = snmp(server.pid, 'Tcp', 'OutRsts');
  const noports0 = snmp(server.pid, 'Udp', 'NoPorts');
  const p0 = await pl.collect([]);
  const n = 12;
  const res = await inPod(client, ['refused', server.ip, '7001', String(n), '42000']);
  assert.equal(res['refused'], n);
  const u = await inPod(client, ['udpsend', server.ip, '9', '30']);
  assert.equal(u['sent'], 30);
  const mine = (type: string) => events.filter((ev) => ev.netns === server.netnsInode && ev.type === type);
  assert.ok(await waitFor(() => mine('TCPRESET_NOSOCK').length >= n));
  assert.ok(
    await waitFor(
      () =>
        mine('PACKETLOSS').filter(
          (ev) => ev.attributes['error.type'] === 'NO_SOCKET' && ev.attributes['destination.port'] === 9,
        ).length >= 30,
    ),
  );
  assert.equal(snmp(server.pid, 'Tcp', 'OutRsts') - rst0, n);
  assert.equal(snmp(server.pid, 'Udp', 'NoPorts') - noports0, 30);
  const rsPoints = await rs.collect([]);
  assert.equal(sumPoints(rsPoints, RS.resets, server.netnsInode, { 'podnet.tcp.reset.kind': 'nosock' }), n);
  const p1 = await pl.collect([]);
  const udp = (p: typeof p1) =>
    sumPoints(p, PL.drops, server.netnsInode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  assert.equal(udp(p1) - udp(p0), 30);
  for (const ev of mine('TCPRESET_NOSOCK')) {
    assert.equal(r.byNetns(ev.netns)?.pod?.uid, server.uid);
    assert.equal(ev.attributes['network.local.address'], server.ip);
    assert.equal(ev.attributes['network.peer.address'], client.ip);
    assert.equal(ev.attributes['network.local.port'], 7001);
  }
  const recv = events.filter((ev) => ev.netns === client.netnsInode && ev.type === 'TCPRESET_RECEIVE');
  assert.ok(
    await waitFor(
      () =>
        events.filter((ev) => ev.netns === client.netnsInode && ev.type === 'TCPRESET_RECEIVE').length >= n,
    ),
  );
  assert.ok(recv.length <= n);
  assert.equal(r.byNetns(client.netnsInode)?.pod?.name, 'pna-client');

  // the server pod goes away: its series disappear
  await e.removePod(server);
  await r.refresh();
  const p2 = await pl.collect([]);
  assert.equal(p2.filter((p) => p.netns === server.netnsInode).length, 0);
});
