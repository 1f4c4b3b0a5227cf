// Waits until a link that was just set up can take IPv6 traffic that needs neighbour discovery.
//
//   sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
//   await waitLinkReady(ns, dev);   // or waitLinkReadySync in a synchronous fixture
//
// Why: `ip link set up` returns before the device is operationally up. The kernel's link watcher
// (net/core/link_watch.c) applies the operstate and only then tells IPv6 the link is ready; for an event
// it does not deem urgent it runs at most once per second, for all netns of the host, so on a busy host
// the wait is anywhere from 0 to over 1 s. A veth pair made in two fresh netns is such a case: both ends
// get ifindex 2, so `ifindex != iflink` (what makes a veth's event urgent) does not hold for the end
// brought up second. Until then IPv6 has not configured the device (no `multicast ff00::/8` route, no
// link-local address): a neighbour solicitation arriving on it is dropped as Ip6InNoRoutes (seen with
// the skb:kfree_skb tracepoint, reason IP_INNOROUTES, and `ip monitor`: the route appears ~0.6 s after
// `link set up`), the sender retries only after 1 s (retrans_time), and a 2 s ping times out when the
// wait is longer (test/procfs/ground-truth.test.ts's setup under load).
import { execFileSync } from 'node:child_process';

export interface LinkReadyOptions {
  /**
   * Give up after this long. 10 s: the link watcher runs at most 1 s after the event on a quiet host;
   * the rest is room for its work queue and the RTNL lock on a host where other tests churn netns.
   */
  readonly timeoutMs?: number;
  /** Also wait for IPv6 to configure the device (default true; false for a link without IPv6). */
  readonly ipv6?: boolean;
}

function ip(ns: string | undefined, args: readonly string[]): string {
  return execFileSync('ip', ns ? ['-n', ns, ...args] : [...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** True when `dev` (in netns `ns`, or the host's when undefined) is operationally up and IPv6-ready. */
export function linkReady(ns: string | undefined, dev: string, ipv6 = true): boolean {
  const [link] = JSON.parse(ip(ns, ['-j', 'link', 'show', 'dev', dev])) as { operstate?: string }[];
  if (link?.operstate !== 'UP') return false;
  // addrconf adds the multicast route when it sees the link ready (addrconf_dev_config)
  return (
    !ipv6 || ip(ns, ['-6', 'route', 'show', 'table', 'local', 'type', 'multicast', 'dev', dev]).trim() !== ''
  );
}

function failure(ns: string | undefined, dev: string, timeoutMs: number): Error {
  let state = '';
  try {
    state = ip(ns, ['link', 'show', 'dev', dev]).trim();
  } catch (err) {
    state = String(err);
  }
  return new Error(`link ${dev}${ns ? ` in netns ${ns}` : ''} not ready after ${timeoutMs} ms: ${state}`);
}

export async function waitLinkReady(
  ns: string | undefined,
  dev: string,
  opts: LinkReadyOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const end = Date.now() + timeoutMs;
  while (!linkReady(ns, dev, opts.ipv6)) {
    if (Date.now() > end) throw failure(ns, dev, timeoutMs);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The same, for fixtures that set up synchronously (sleeps with sleep(1) between checks). */
export function waitLinkReadySync(ns: string | undefined, dev: string, opts: LinkReadyOptions = {}): void {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const end = Date.now() + timeoutMs;
  while (!linkReady(ns, dev, opts.ipv6)) {
    if (Date.now() > end) throw failure(ns, dev, timeoutMs);
    execFileSync('sleep', ['0.02']);
  }
}
