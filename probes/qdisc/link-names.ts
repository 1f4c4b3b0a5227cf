// Interface names of a netns for the qdisc probe, kept between collections. A qdisc message carries the
// ifindex only, so each collection dumped RTM_GETLINK as well as RTM_GETQDISC: at 1,000 netns the link
// dump was ~25 µs of a collection's CPU per netns, more than the qdisc dump itself (~19 µs). Names change only with a link event, and the kernel announces every one (add, delete,
// rename, a move to another netns) to the RTNLGRP_LINK group of that netns. So the probe's kept socket
// (receiver/kit/netlink.ts) joins the group before its first dump, and the names are dumped again only
// when a notification (or a dropped one: ENOBUFS) is pending — one non-blocking recv(2) otherwise.
// A notification that arrives while a request is in flight is skipped by the reply reader
// (receiver/netlink/codec.ts) and counted in `stats.skipped`: that marks the names stale too.
//
// Within a collection (`cycle`, receiver/kit/cycle.ts) the kept sockets are looked at with one poll(2) for
// all of them, at the first netns read (`NetlinkSocket.quiet`), instead of a recv(2) per socket that
// at 1,000 netns found nothing 1,000 times per collection; a socket with something pending is drained and
// its names dumped again as before.
//
// Exact as the dump was: the names used are those of a dump taken after the last change announced before
// the collection's poll (before the qdisc dump without a cycle); a change announced after it is seen at
// the next collection, as a change racing the qdisc dump was when the link dump came first. A qdisc on an
// ifindex the names lack (a link added since) triggers a new dump.
import { dumpLinkNames } from '../../receiver/netlink/rtnetlink.ts';
import { NetlinkSocket } from '../../receiver/netlink/socket.ts';

/** linux/rtnetlink.h `RTNLGRP_LINK`. */
const RTNLGRP_LINK = 1;

interface Names {
  readonly names: Map<number, string>;
  /** `stats.skipped` of the socket before the dump: any skip since then may have been a link event. */
  readonly skipped: number;
}

export interface LinkNameStats {
  /** Link dumps made (the first per socket, and after a change). */
  dumps: number;
  /** Collections served from the kept names. */
  reused: number;
  /** poll(2) calls (one per collection) and sockets they looked at. */
  polls: number;
  polled: number;
}

export class LinkNames {
  // Per socket: a socket the pool replaced (error, netns gone) starts over, joined anew.
  readonly #bySocket = new WeakMap<NetlinkSocket, Names>();
  readonly stats: LinkNameStats = { dumps: 0, reused: 0, polls: 0, polled: 0 };
  /** Sockets with names (closed ones are forgotten at the next poll). */
  readonly #socks = new Set<NetlinkSocket>();
  /** The collection the last poll was made for, and the sockets it found nothing pending on. */
  #polledCycle: object | undefined;
  #quiet = new Set<NetlinkSocket>();

  /**
   * Names of the socket's netns, valid as of the collection's poll (`cycle`), or as of now without one.
   */
  get(sock: NetlinkSocket, cycle?: object): Map<number, string> {
    const have = this.#bySocket.get(sock);
    if (have === undefined) {
      sock.join(RTNLGRP_LINK); // before the dump: a change after it is queued on the socket
      return this.refresh(sock);
    }
    if (cycle !== undefined && cycle !== this.#polledCycle) this.#poll(cycle);
    // Nothing was pending at the collection's poll: no recv(2). Else drainPending first: it reads every
    // queued notification, whatever the skipped count says. Quiet once: a second read in the same collection
    // looks again.
    const quiet = cycle !== undefined && this.#quiet.delete(sock);
    if ((quiet || !sock.drainPending()) && sock.stats.skipped === have.skipped) {
      this.stats.reused++;
      return have.names;
    }
    return this.refresh(sock);
  }

  /** One poll(2) over every socket with names: those with nothing pending are quiet in `cycle`. */
  #poll(cycle: object): void {
    this.#polledCycle = cycle;
    const list: NetlinkSocket[] = [];
    for (const s of this.#socks) {
      if (s.closed) this.#socks.delete(s);
      else list.push(s);
    }
    this.#quiet = NetlinkSocket.quiet(list);
    if (list.length === 0) return;
    this.stats.polls++;
    this.stats.polled += list.length;
  }

  /** Dumps the names now (the socket must have joined: through `get` first). */
  refresh(sock: NetlinkSocket): Map<number, string> {
    const skipped = sock.stats.skipped;
    const names = dumpLinkNames(sock);
    this.#bySocket.set(sock, { names, skipped });
    this.#socks.add(sock);
    this.stats.dumps++;
    return names;
  }
}
