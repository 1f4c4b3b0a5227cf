// Interface names of a netns for the qdisc probe, kept between collections. A qdisc message carries the
// ifindex only, so each collection dumped RTM_GETLINK as well as RTM_GETQDISC: at 1,000 netns the link
// dump was ~25 µs of a collection's CPU per netns, more than the qdisc dump itself (~19 µs). Names change only with a link event, and the kernel announces every one (add, delete,
// rename, a move to another netns) to the RTNLGRP_LINK group of that netns. So the probe's kept socket
// (receiver/kit/netlink.ts) joins the group before its first dump, and the names are dumped again only
// when a notification (or a dropped one: ENOBUFS) is pending — one non-blocking recv(2) otherwise.
// A notification that arrives while a request is in flight is skipped by the reply reader
// (receiver/netlink/codec.ts) and counted in `stats.skipped`: that marks the names stale too.
//
// Exact as the dump was: the names used are those of a dump taken after the last change announced before
// the qdisc dump; a change racing the qdisc dump is seen at the next collection, as it was when the link
// dump came first. A qdisc on an ifindex the names lack (a link added since) triggers a new dump.
import { dumpLinkNames } from '../../receiver/netlink/rtnetlink.ts';
import type { NetlinkSocket } from '../../receiver/netlink/socket.ts';

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
}

export class LinkNames {
  // Per socket: a socket the pool replaced (error, netns gone) starts over, joined anew.
  readonly #bySocket = new WeakMap<NetlinkSocket, Names>();
  readonly stats: LinkNameStats = { dumps: 0, reused: 0 };

  /** Names of the socket's netns, valid as of now. */
  get(sock: NetlinkSocket): Map<number, string> {
    const have = this.#bySocket.get(sock);
    if (have === undefined) {
      sock.join(RTNLGRP_LINK); // before the dump: a change after it is queued on the socket
      return this.refresh(sock);
    }
    // drainPending first: it reads every queued notification, whatever the skipped count says.
    if (!sock.drainPending() && sock.stats.skipped === have.skipped) {
      this.stats.reused++;
      return have.names;
    }
    return this.refresh(sock);
  }

  /** Dumps the names now (the socket must have joined: through `get` first). */
  refresh(sock: NetlinkSocket): Map<number, string> {
    const skipped = sock.stats.skipped;
    const names = dumpLinkNames(sock);
    this.#bySocket.set(sock, { names, skipped });
    this.stats.dumps++;
    return names;
  }
}
