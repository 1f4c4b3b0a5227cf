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
  /** Per role: the value set (numbers are in `#num`, flagged in `#isNum`: no heap number per value). */
  readonly #v: (AttributeValue | undefined)[] = new Array(ROLES).fill(undefined);
  readonly #num = new Float64Array(ROLES);
  readonly #isNum = new Uint8Array(ROLES);
  readonly #kinds: string[] = [];
  #nKinds = 0;
  readonly #names = new Map<string, string>();
  readonly #entities = new WeakMap<object, string>();
  /** A stack's innermost frame without its offset (`stack?.[0]?.replace(...)` in eventBody), or null. */
  readonly #frames = new WeakMap<readonly string[], string | null>();

  /** The value of an attribute of role `role` (not ROLE_NONE) that is not a number. */
  set(role: number, value: AttributeValue): void {
    if (role === ROLE_KIND) {
      if (typeof value === 'string') this.#kinds[this.#nKinds++] = value;
    } else {
      this.#v[role] = value;
      this.#isNum[role] = 0;
    }
  }

  /** The value of an attribute of role `role` (not ROLE_NONE) that is a number. */
  setNumber(role: number, value: number): void {
    if (role === ROLE_KIND) return; // only string kinds are parts
    this.#num[role] = value;
    this.#isNum[role] = 1;
    this.#v[role] = undefined;
  }

  /** Forget the values set (a record whose body is written otherwise). */
  clear(): void {
    this.#v.fill(undefined);
    this.#isNum.fill(0);
    this.#nKinds = 0;
  }

  #has(role: number): boolean {
    return this.#isNum[role] === 1 || this.#v[role] !== undefined;
  }

  /** String(value) of the role's value (which is set). */
  #put(w: ProtoWriter, role: number): void {
    if (this.#isNum[role] === 1) decimal(w, this.#num[role]!);
    else w.text(String(this.#v[role]));
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
    w.text(' ');
    if (this.#isNum[ROLE_ERROR] === 1 || (v[ROLE_ERROR] !== undefined && v[ROLE_ERROR] !== ''))
      this.#put(w, ROLE_ERROR);
    else w.text(type);
    if (this.#has(ROLE_TRANSPORT)) {
      w.text(' ');
      this.#put(w, ROLE_TRANSPORT);
    }
    const hasSrc = this.#has(ROLE_SRC_ADDR) || this.#has(ROLE_SRC_PORT);
    const hasDst = this.#has(ROLE_DST_ADDR) || this.#has(ROLE_DST_PORT);
    if (hasSrc || hasDst) {
      w.text(' ');
      if (hasSrc) this.#endpoint(w, ROLE_SRC_ADDR, ROLE_SRC_PORT);
      else w.text('*');
      w.text(' -> ');
      if (hasDst) this.#endpoint(w, ROLE_DST_ADDR, ROLE_DST_PORT);
      else w.text('*');
    }
    if (this.#has(ROLE_LOCAL_ADDR) || this.#has(ROLE_LOCAL_PORT)) {
      w.text(' local ');
      this.#endpoint(w, ROLE_LOCAL_ADDR, ROLE_LOCAL_PORT);
    }
    if (this.#has(ROLE_PEER_ADDR) || this.#has(ROLE_PEER_PORT)) {
      w.text(' peer ');
      this.#endpoint(w, ROLE_PEER_ADDR, ROLE_PEER_PORT);
    }
    if (this.#has(ROLE_IFACE)) {
      w.text(' on ');
      this.#put(w, ROLE_IFACE);
    }
    if (this.#has(ROLE_STATE)) {
      w.text(' ');
      this.#put(w, ROLE_STATE);
    }
    if (this.#isNum[ROLE_DURATION] === 1 && Number.isFinite(this.#num[ROLE_DURATION]!)) {
      w.text(' ');
      w.text(humanSeconds(this.#num[ROLE_DURATION]!));
    }
    if (this.#has(ROLE_COMM)) {
      w.text(' by ');
      this.#put(w, ROLE_COMM);
      if (this.#has(ROLE_PID)) {
        w.text('[');
        this.#put(w, ROLE_PID);
        w.text(']');
      }
    }
    this.#peer(w);
    w.text(' in ');
    w.text(this.#entityText(entity));
    if (this.#has(ROLE_DROP_LOCATION)) {
      if (this.#isNum[ROLE_DROP_LOCATION] === 1 || v[ROLE_DROP_LOCATION] !== '') {
        w.text(' (');
        this.#put(w, ROLE_DROP_LOCATION);
        w.text(')');
      }
    } else if (stack) {
      const where = this.#frame(stack);
      if (where !== null && where !== '') {
        w.text(' (');
        w.text(where);
        w.text(')');
      }
    }
    this.clear();
  }

  /** eventBody's endpoint(): at least one of the two is set. */
  #endpoint(w: ProtoWriter, addr: number, port: number): void {
    if (!this.#has(addr)) w.text('*');
    else if (this.#isNum[addr] === 1)
      decimal(w, this.#num[addr]!); // no ':' in a number's text
    else {
      const a = String(this.#v[addr]);
      if (a.includes(':')) {
        w.text('[');
        w.text(a);
        w.text(']');
      } else w.text(a);
    }
    if (this.#has(port)) {
      w.text(':');
      this.#put(w, port);
    }
  }

  /** `(other end: …)` as eventBody's peerText. */
  #peer(w: ProtoWriter): void {
    let what: number;
    if (this.#has(ROLE_PEER_POD)) {
      w.text(' (other end: pod ');
      what = ROLE_PEER_POD;
    } else if (this.#has(ROLE_PEER_SVC)) {
      w.text(' (other end: service ');
      what = ROLE_PEER_SVC;
    } else if (this.#has(ROLE_PEER_NODE)) {
      w.text(' (other end: node ');
      this.#put(w, ROLE_PEER_NODE);
      w.text(')');
      return;
    } else return;
    if (this.#has(ROLE_PEER_NS)) {
      this.#put(w, ROLE_PEER_NS);
      w.text('/');
    }
    this.#put(w, what);
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

/** String(n), digits written by hand for the integers ports and pids are (no string per value). */
function decimal(w: ProtoWriter, n: number): void {
  if (!(Number.isInteger(n) && n >= 0 && n < 2 ** 31)) {
    w.text(String(n));
    return;
  }
  w.ensure(10);
  const b = w.buf;
  let x = n | 0;
  const len =
    x < 10
      ? 1
      : x < 100
        ? 2
        : x < 1000
          ? 3
          : x < 10000
            ? 4
            : x < 100000
              ? 5
              : x < 1000000
                ? 6
                : decimalSize(x);
  let p = w.pos + len;
  w.pos = p;
  do {
    const q = (x / 10) | 0;
    b[--p] = 48 + x - 10 * q;
    x = q;
  } while (x > 0);
}

function decimalSize(x: number): number {
  return x < 10000000 ? 7 : x < 100000000 ? 8 : x < 1000000000 ? 9 : 10;
}
