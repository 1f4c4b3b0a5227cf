// The event body text (receiver/otel/event-body.ts) written straight into the protobuf writer by the logs
// encoder (logs.ts), from the values of a record's attributes as they come in its batch: no attribute
// object per record, no array of parts, no joined string. The text is eventBody's, character for
// character: test/otel/protobuf/logs.test.ts compares the encoder's bytes with the SDK path (which calls
// eventBody) for every probe event shape, and test/otel/event-body.test.ts compares the two texts over
// random records.
//
// What the body reads is found by a role per attribute key (computed once per key of the batch table);
// the parts that repeat (the event name's text, the entity's, a stack's innermost frame) are cached.
import type { AttributeValue } from '../../probe/types.ts';
import { entityText, humanSeconds } from '../event-body.ts';
import type { ProtoWriter } from './writer.ts';

type Attrs = Readonly<Record<string, AttributeValue>>;

export const ROLE_NONE = 0;
/** A `*.kind` attribute (not a `podnet.peer.*` one): its string value is a part, in key order. */
export const ROLE_KIND = 1;
const ROLE_ERROR = 2;
const ROLE_TRANSPORT = 3;
const ROLE_SRC_ADDR = 4;
const ROLE_SRC_PORT = 5;
const ROLE_DST_ADDR = 6;
const ROLE_DST_PORT = 7;
const ROLE_LOCAL_ADDR = 8;
const ROLE_LOCAL_PORT = 9;
const ROLE_PEER_ADDR = 10;
const ROLE_PEER_PORT = 11;
const ROLE_IFACE = 12;
const ROLE_STATE = 13;
const ROLE_DURATION = 14;
const ROLE_COMM = 15;
const ROLE_PID = 16;
const ROLE_PEER_NS = 17;
const ROLE_PEER_POD = 18;
const ROLE_PEER_SVC = 19;
const ROLE_PEER_NODE = 20;
const ROLE_DROP_LOCATION = 21;
export const ROLES = 22;

const BY_KEY = new Map<string, number>([
  ['error.type', ROLE_ERROR],
  ['network.transport', ROLE_TRANSPORT],
  ['source.address', ROLE_SRC_ADDR],
  ['source.port', ROLE_SRC_PORT],
  ['destination.address', ROLE_DST_ADDR],
  ['destination.port', ROLE_DST_PORT],
  ['network.local.address', ROLE_LOCAL_ADDR],
  ['network.local.port', ROLE_LOCAL_PORT],
  ['network.peer.address', ROLE_PEER_ADDR],
  ['network.peer.port', ROLE_PEER_PORT],
  ['network.interface.name', ROLE_IFACE],
  ['network.connection.state', ROLE_STATE],
  ['podnet.latency.duration', ROLE_DURATION],
  ['podnet.task.comm', ROLE_COMM],
  ['process.pid', ROLE_PID],
  ['podnet.peer.k8s.namespace.name', ROLE_PEER_NS],
  ['podnet.peer.k8s.pod.name', ROLE_PEER_POD],
  ['podnet.peer.k8s.service.name', ROLE_PEER_SVC],
  ['podnet.peer.k8s.node.name', ROLE_PEER_NODE],
  ['podnet.drop.location', ROLE_DROP_LOCATION],
]);

/** What eventBody does with the attribute `key`. */
export function bodyRole(key: string): number {
  const r = BY_KEY.get(key);
  if (r !== undefined) return r;
  return key.endsWith('.kind') && !key.startsWith('podnet.peer.') ? ROLE_KIND : ROLE_NONE;
}

/** Distinct event names cached; past it the cache starts over (never expected). */
const NAMES_MAX = 10_000;

/**
 * Collects one record's body values (`set`, `kind`) and writes its text (`write`). One per encoder; the
 * values are cleared by `write`.
 */
export class BodyWriter {
  readonly #v: (AttributeValue | undefined)[] = new Array(ROLES).fill(undefined);
  readonly #kinds: string[] = [];
  #nKinds = 0;
  readonly #names = new Map<string, string>();
  readonly #entities = new WeakMap<object, string>();
  /** A stack's innermost frame without its offset (`stack?.[0]?.replace(...)` in eventBody), or null. */
  readonly #frames = new WeakMap<readonly string[], string | null>();

  /** The value of an attribute of role `role` (not ROLE_NONE). */
  set(role: number, value: AttributeValue): void {
    if (role === ROLE_KIND) {
      if (typeof value === 'string') this.#kinds[this.#nKinds++] = value;
    } else this.#v[role] = value;
  }

  /** Forget the values set (a record whose body is written otherwise). */
  clear(): void {
    this.#v.fill(undefined);
    this.#nKinds = 0;
  }

  /** The body text (eventBody's) as UTF-8, without tag or length; clears the values. */
  write(
    w: ProtoWriter,
    name: string,
    type: string,
    entity: Attrs,
    stack: readonly string[] | undefined,
  ): void {
    const v = this.#v;
    w.text(this.#nameText(name));
    for (let i = 0; i < this.#nKinds; i++) {
      w.text(' ');
      w.text(this.#kinds[i]!);
    }
    const err = v[ROLE_ERROR];
    w.text(' ');
    w.text(err !== undefined && err !== '' ? String(err) : type);
    const transport = v[ROLE_TRANSPORT];
    if (transport !== undefined) {
      w.text(' ');
      w.text(String(transport));
    }
    const hasSrc = v[ROLE_SRC_ADDR] !== undefined || v[ROLE_SRC_PORT] !== undefined;
    const hasDst = v[ROLE_DST_ADDR] !== undefined || v[ROLE_DST_PORT] !== undefined;
    if (hasSrc || hasDst) {
      w.text(' ');
      if (hasSrc) endpoint(w, v[ROLE_SRC_ADDR], v[ROLE_SRC_PORT]);
      else w.text('*');
      w.text(' -> ');
      if (hasDst) endpoint(w, v[ROLE_DST_ADDR], v[ROLE_DST_PORT]);
      else w.text('*');
    }
    if (v[ROLE_LOCAL_ADDR] !== undefined || v[ROLE_LOCAL_PORT] !== undefined) {
      w.text(' local ');
      endpoint(w, v[ROLE_LOCAL_ADDR], v[ROLE_LOCAL_PORT]);
    }
    if (v[ROLE_PEER_ADDR] !== undefined || v[ROLE_PEER_PORT] !== undefined) {
      w.text(' peer ');
      endpoint(w, v[ROLE_PEER_ADDR], v[ROLE_PEER_PORT]);
    }
    const iface = v[ROLE_IFACE];
    if (iface !== undefined) {
      w.text(' on ');
      w.text(String(iface));
    }
    const state = v[ROLE_STATE];
    if (state !== undefined) {
      w.text(' ');
      w.text(String(state));
    }
    const d = v[ROLE_DURATION];
    if (typeof d === 'number' && Number.isFinite(d)) {
      w.text(' ');
      w.text(humanSeconds(d));
    }
    const comm = v[ROLE_COMM];
    if (comm !== undefined) {
      w.text(' by ');
      w.text(String(comm));
      const pid = v[ROLE_PID];
      if (pid !== undefined) {
        w.text('[');
        w.text(String(pid));
        w.text(']');
      }
    }
    this.#peer(w);
    w.text(' in ');
    w.text(this.#entityText(entity));
    const drop = v[ROLE_DROP_LOCATION];
    const where = drop !== undefined ? String(drop) : stack ? this.#frame(stack) : null;
    if (where !== null && where !== '') {
      w.text(' (');
      w.text(where);
      w.text(')');
    }
    v.fill(undefined);
    this.#nKinds = 0;
  }

  /** `(other end: …)` as eventBody's peerText. */
  #peer(w: ProtoWriter): void {
    const v = this.#v;
    const ns = v[ROLE_PEER_NS];
    const pod = v[ROLE_PEER_POD];
    const svc = v[ROLE_PEER_SVC];
    const node = v[ROLE_PEER_NODE];
    let what: string;
    let value: AttributeValue;
    if (pod !== undefined) {
      what = ' (other end: pod ';
      value = pod;
    } else if (svc !== undefined) {
      what = ' (other end: service ';
      value = svc;
    } else if (node !== undefined) {
      w.text(' (other end: node ');
      w.text(String(node));
      w.text(')');
      return;
    } else return;
    w.text(what);
    if (ns !== undefined) {
      w.text(String(ns));
      w.text('/');
    }
    w.text(String(value));
    w.text(')');
  }

  #nameText(name: string): string {
    let t = this.#names.get(name);
    if (t === undefined) {
      if (this.#names.size >= NAMES_MAX) this.#names.clear();
      t = name.startsWith('podnet.') ? name.slice(7).replace(/\./g, ' ') : name;
      this.#names.set(name, t);
    }
    return t;
  }

  #entityText(entity: Attrs): string {
    let t = this.#entities.get(entity);
    if (t === undefined) {
      t = entityText(entity);
      this.#entities.set(entity, t);
    }
    return t;
  }

  #frame(stack: readonly string[]): string | null {
    let f = this.#frames.get(stack);
    if (f === undefined) {
      f = stack[0]?.replace(/\+0x[0-9a-f]+(\/0x[0-9a-f]+)?$/i, '') ?? null;
      this.#frames.set(stack, f);
    }
    return f;
  }
}

/** eventBody's endpoint(): at least one of the two is defined. */
function endpoint(w: ProtoWriter, addr: AttributeValue | undefined, port: AttributeValue | undefined): void {
  const a = addr === undefined ? '*' : String(addr);
  if (a.includes(':')) {
    w.text('[');
    w.text(a);
    w.text(']');
  } else w.text(a);
  if (port !== undefined) {
    w.text(':');
    w.text(String(port));
  }
}
