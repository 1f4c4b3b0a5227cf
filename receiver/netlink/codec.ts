// Netlink message and attribute codec: pure functions over bytes, no I/O.
//
// A netlink datagram holds one or more messages, each a 16-byte `nlmsghdr` (len u32, type u16,
// flags u16, seq u32, pid u32, host byte order) followed by a payload, padded to 4 bytes. Payloads
// carry a fixed family header and then attributes (`nlattr`/`rtattr`: len u16, type u16, value,
// padded to 4 bytes). Every bound is checked: a length that points outside the datagram or below the
// header size is a `NetlinkProtocolError`, never an out-of-range read.

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;

// Message types and flags (linux/netlink.h).
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

/** Attribute type bits that are flags, not part of the type. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** The kernel answered with an error (NLMSG_ERROR with a negative errno, or a failed dump's DONE). */
export class NetlinkError extends Error {
  /** Positive errno, e.g. 2 (ENOENT), 95 (EOPNOTSUPP). */
  readonly errno: number;
  constructor(message: string, errno: number) {
    super(message);
    this.name = 'NetlinkError';
    this.errno = errno;
  }
}

/** The bytes do not form valid netlink messages (truncated, bad length, unexpected sequence). */
export class NetlinkProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetlinkProtocolError';
  }
}

const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

export const align4 = (n: number): number => (n + 3) & ~3;

/** One message inside a received datagram; `view` is only valid during the callback. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly view: DataView;
  /** Offset of the payload (after the 16-byte header) in `view`. */
  readonly payloadOffset: number;
  /** Payload length in bytes (header excluded, padding excluded). */
  readonly payloadLength: number;
}

/** A message object `forEachMessage` can fill again for each message (its `reuse` argument). */
export type ReusableMessage = { -readonly [K in keyof NetlinkMessage]: NetlinkMessage[K] };

export function reusableMessage(): ReusableMessage {
  return { type: 0, flags: 0, seq: 0, pid: 0, view: EMPTY_VIEW, payloadOffset: 0, payloadLength: 0 };
}

/**
 * Walks the messages of one datagram (`length` valid bytes from `offset` in `view`) and calls `fn` for
 * each. Throws `NetlinkProtocolError` on a header that is truncated or claims more bytes than present.
 */
export function forEachMessage(
  view: DataView,
  offset: number,
  length: number,
  fn: (msg: NetlinkMessage) => void,
  /**
   * Hand every message in this object, overwritten for the next (as a request's replies are decoded:
   * ReplyReader): for callers that read the message during the call only, not one object per message.
   */
  reuse?: ReusableMessage,
): void {
  const end = offset + length;
  if (end > view.byteLength) throw new NetlinkProtocolError('datagram length exceeds buffer');
  let pos = offset;
  while (pos < end) {
    if (end - pos < NLMSG_HDRLEN) {
      throw new NetlinkProtocolError(`truncated netlink header: ${end - pos} bytes left`);
    }
    const len = view.getUint32(pos, true);
    if (len < NLMSG_HDRLEN) throw new NetlinkProtocolError(`netlink message length ${len} < header`);
    if (len > end - pos) {
      throw new NetlinkProtocolError(`truncated netlink message: length ${len}, ${end - pos} bytes left`);
    }
    if (reuse !== undefined) {
      const m = reuse;
      m.type = view.getUint16(pos + 4, true);
      m.flags = view.getUint16(pos + 6, true);
      m.seq = view.getUint32(pos + 8, true);
      m.pid = view.getUint32(pos + 12, true);
      m.view = view;
      m.payloadOffset = pos + NLMSG_HDRLEN;
      m.payloadLength = len - NLMSG_HDRLEN;
      fn(m);
    } else
      fn({
        type: view.getUint16(pos + 4, true),
        flags: view.getUint16(pos + 6, true),
        seq: view.getUint32(pos + 8, true),
        pid: view.getUint32(pos + 12, true),
        view,
        payloadOffset: pos + NLMSG_HDRLEN,
        payloadLength: len - NLMSG_HDRLEN,
      });
    pos += align4(len);
  }
}

/**
 * Reads the errno of an NLMSG_ERROR payload (`int error` + the offending request header). Returns the
 * positive errno, or 0 for an ACK.
 */
export function errorPayloadErrno(msg: NetlinkMessage): number {
  if (msg.payloadLength < 4) throw new NetlinkProtocolError('truncated NLMSG_ERROR payload');
  const err = msg.view.getInt32(msg.payloadOffset, true);
  if (err > 0) throw new NetlinkProtocolError(`NLMSG_ERROR with positive error ${err}`);
  return -err;
}

/**
 * Attribute table: for each attribute type (flags masked off) the value's offset and length in `view`.
 * The last occurrence wins for repeated types. Types above `maxType` are ignored.
 */
export class Attrs {
  view: DataView = EMPTY_VIEW;
  readonly #offsets: Int32Array;
  readonly #lengths: Int32Array;
  constructor(maxType: number) {
    this.#offsets = new Int32Array(maxType + 1).fill(-1);
    this.#lengths = new Int32Array(maxType + 1);
  }
  /** Fills the table from the attributes in [offset, offset + length); throws on malformed bytes. */
  parse(view: DataView, offset: number, length: number): this {
    this.#offsets.fill(-1);
    this.view = view;
    const end = offset + length;
    if (end > view.byteLength) throw new NetlinkProtocolError('attribute block exceeds buffer');
    let pos = offset;
    while (end - pos >= NLA_HDRLEN) {
      const len = view.getUint16(pos, true);
      if (len < NLA_HDRLEN) throw new NetlinkProtocolError(`attribute length ${len} < header`);
      if (len > end - pos) {
        throw new NetlinkProtocolError(`truncated attribute: length ${len}, ${end - pos} bytes left`);
      }
      const type = view.getUint16(pos + 2, true) & NLA_TYPE_MASK;
      if (type < this.#offsets.length) {
        this.#offsets[type] = pos + NLA_HDRLEN;
        this.#lengths[type] = len - NLA_HDRLEN;
      }
      pos += align4(len);
    }
    // Fewer than 4 trailing bytes are padding (as the kernel's nla_ok loop treats them).
    return this;
  }
  has(type: number): boolean {
    return (this.#offsets[type] ?? -1) >= 0;
  }
  offset(type: number): number {
    return this.#offsets[type] ?? -1;
  }
  length(type: number): number {
    return this.has(type) ? this.#lengths[type]! : 0;
  }
  #need(type: number, size: number): number {
    const off = this.#offsets[type] ?? -1;
    if (off < 0) throw new NetlinkProtocolError(`attribute ${type} missing`);
    if (this.#lengths[type]! < size) {
      throw new NetlinkProtocolError(`attribute ${type} too short: ${this.#lengths[type]} < ${size}`);
    }
    return off;
  }
  u32(type: number): number {
    return this.view.getUint32(this.#need(type, 4), true);
  }
  /** Big-endian u32 (netfilter attributes are in network byte order). */
  be32(type: number): number {
    return this.view.getUint32(this.#need(type, 4), false);
  }
  u64(type: number): number {
    return Number(this.view.getBigUint64(this.#need(type, 8), true));
  }
  /** Where the string value of `type` at `off` ends: at its first NUL, else at the attribute's end. */
  #strEnd(type: number, off: number): number {
    const end = off + this.#lengths[type]!;
    for (let i = off; i < end; i++) if (this.view.getUint8(i) === 0) return i;
    return end;
  }
  /** NUL-terminated string value. */
  str(type: number): string {
    const off = this.#need(type, 0);
    const end = this.#strEnd(type, off);
    return Buffer.from(this.view.buffer, this.view.byteOffset + off, end - off).toString('utf8');
  }
  /**
   * `str`, as the string an earlier call returned for the same bytes: values seen again and again (qdisc
   * kinds, interface names) are matched in place and make no string or Buffer view per message.
   */
  strShared(type: number): string {
    const off = this.#need(type, 0);
    const len = this.#strEnd(type, off) - off;
    const list = sharedStrings.get(len);
    if (list !== undefined)
      for (const k of list) {
        let i = 0;
        while (i < len && k.bytes[i] === this.view.getUint8(off + i)) i++;
        if (i === len) return k.value;
      }
    const value = this.str(type);
    if (sharedCount < 4096) {
      sharedCount++;
      const bytes = new Uint8Array(
        this.view.buffer.slice(this.view.byteOffset + off, this.view.byteOffset + off + len),
      );
      if (list) list.push({ bytes, value });
      else sharedStrings.set(len, [{ bytes, value }]);
    }
    return value;
  }
}

// `Attrs.strShared`'s strings by byte length (bounded: names beyond the bound are decoded each time).
const sharedStrings = new Map<number, { bytes: Uint8Array; value: string }[]>();
let sharedCount = 0;

export interface RequestHeader {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
}

/** Encodes a request: header + fixed payload bytes (+ optional attributes already encoded). */
export function encodeMessage(hdr: RequestHeader, payload: Uint8Array): Buffer {
  const len = NLMSG_HDRLEN + payload.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(hdr.type, 4);
  buf.writeUInt16LE(hdr.flags, 6);
  buf.writeUInt32LE(hdr.seq >>> 0, 8);
  buf.writeUInt32LE(0, 12);
  buf.set(payload, NLMSG_HDRLEN);
  return buf;
}

/** Encodes one attribute (header + value + padding). */
export function encodeAttr(type: number, value: Uint8Array): Buffer {
  const len = NLA_HDRLEN + value.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt16LE(len, 0);
  buf.writeUInt16LE(type, 2);
  buf.set(value, NLA_HDRLEN);
  return buf;
}

/**
 * Reassembles the reply to one request from the datagrams received for it: multipart dumps
 * (NLM_F_MULTI ... NLMSG_DONE), single replies, ACKs and errors. Messages for other sequence numbers
 * (stale replies, notifications) are skipped. Pure state machine: the socket layer feeds datagrams.
 */
export class ReplyReader {
  seq: number;
  #onMessage: (msg: NetlinkMessage) => void;
  #finished = false;
  #interrupted = false;
  /** Data messages delivered so far. */
  messages = 0;
  /** Messages skipped because their sequence number was not ours. */
  skipped = 0;
  /**
   * `dump`: the request carried NLM_F_DUMP, so the reply ends with NLMSG_DONE. Otherwise it ends after
   * the first data message, MULTI flag or not (ctnetlink sets NLM_F_MULTI on its single stats reply).
   */
  dump: boolean;
  constructor(seq: number, onMessage: (msg: NetlinkMessage) => void, dump = true) {
    this.seq = seq >>> 0;
    this.#onMessage = onMessage;
    this.dump = dump;
  }
  /**
   * Ready for another reply, as `new ReplyReader(seq, onMessage, dump)` would be, keeping its message
   * object and handler (the socket reuses readers: ./socket.ts `takeReader`).
   */
  reset(seq: number, onMessage: (msg: NetlinkMessage) => void, dump: boolean): void {
    this.seq = seq >>> 0;
    this.#onMessage = onMessage;
    this.dump = dump;
    this.#finished = false;
    this.#interrupted = false;
    this.messages = 0;
    this.skipped = 0;
  }
  get done(): boolean {
    return this.#finished;
  }
  /** Feeds one datagram; returns true when the reply is complete. Throws NetlinkError/ProtocolError. */
  feed(view: DataView, offset: number, length: number): boolean {
    if (this.#finished) throw new NetlinkProtocolError('datagram after the reply was complete');
    // The message object is reused (NetlinkMessage: valid during the callback only); the handler is
    // made once per reader, not per datagram.
    this.#each ??= (msg) => this.#handle(msg);
    this.#msg ??= reusableMessage();
    forEachMessage(view, offset, length, this.#each, this.#msg);
    return this.#finished;
  }

  #each: ((msg: NetlinkMessage) => void) | undefined;
  #msg: ReusableMessage | undefined;

  #handle(msg: NetlinkMessage): void {
    if (this.#finished) return; // the rest of a datagram after DONE is ignored
    if (msg.seq !== this.seq) {
      this.skipped++;
      return;
    }
    if (msg.flags & NLM_F_DUMP_INTR) this.#interrupted = true;
    switch (msg.type) {
      case NLMSG_NOOP:
        return;
      case NLMSG_ERROR: {
        const errno = errorPayloadErrno(msg);
        if (errno !== 0) throw new NetlinkError(`netlink request failed: errno ${errno}`, errno);
        this.#finish();
        return;
      }
      case NLMSG_DONE: {
        if (msg.payloadLength >= 4) {
          const err = msg.view.getInt32(msg.payloadOffset, true);
          if (err < 0) throw new NetlinkError(`netlink dump failed: errno ${-err}`, -err);
        }
        this.#finish();
        return;
      }
      case NLMSG_OVERRUN:
        throw new NetlinkProtocolError('NLMSG_OVERRUN: data lost');
      default:
        this.messages++;
        this.#onMessage(msg);
        if (!this.dump || !(msg.flags & NLM_F_MULTI)) this.#finish();
    }
  }
  #finish(): void {
    this.#finished = true;
    if (this.#interrupted) {
      // EINTR: the dump was inconsistent (the table changed while dumping); the caller may retry.
      throw new NetlinkError('netlink dump interrupted (NLM_F_DUMP_INTR); the table changed', 4);
    }
  }
}

/**
 * Text of a 4- or 16-byte address at `off`: dotted v4, RFC 5952 v6 (as inet_ntop, except that a
 * v4-mapped address keeps hex groups).
 */
export function ipText(v: DataView, off: number, len: number): string {
  if (len === 4)
    return `${v.getUint8(off)}.${v.getUint8(off + 1)}.${v.getUint8(off + 2)}.${v.getUint8(off + 3)}`;
  if (len !== 16) throw new NetlinkProtocolError(`address of ${len} bytes`);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(v.getUint16(off + i * 2, false).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
