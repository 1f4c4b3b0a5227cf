// OTLP common.proto values as the SDK's serializer writes them (AnyValue, KeyValue, attribute lists), and
// small encodings cached by the logs encoder (receiver/otel/protobuf/logs.ts).
import { WIRE_FIXED64 as F64, WIRE_LDELIM as LD, ProtoWriter, WIRE_VARINT as VI } from './writer.ts';

/** Scratch writer for the small encodings the logs encoder caches (encoded, stringField). */
const scratch = new ProtoWriter(256);
export function encoded(fn: (w: ProtoWriter) => void): Uint8Array {
  scratch.reset();
  fn(scratch);
  return scratch.finish();
}

/** AnyValue body (without tag) of a number: anyValue's number case (small, for the per-attribute path). */
export function anyNumber(w: ProtoWriter, v: number): void {
  if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
    w.tag(3, VI);
    w.int64(v);
  } else {
    w.tag(4, F64);
    w.double(v);
  }
}

/** AnyValue body (without tag), as the SDK's writeAnyValue. */
export function anyValue(w: ProtoWriter, v: unknown): void {
  switch (typeof v) {
    case 'string':
      w.tag(1, LD);
      w.string(v);
      return;
    case 'boolean':
      w.tag(2, VI);
      w.bool(v);
      return;
    case 'number':
      anyNumber(w, v);
      return;
    case 'object': {
      if (v === null) return;
      if (v instanceof Uint8Array) {
        w.tag(7, LD);
        w.bytes(v);
        return;
      }
      const isArray = Array.isArray(v);
      w.tag(isArray ? 5 : 6, LD);
      const list = w.fork();
      if (isArray) {
        for (const item of v) {
          w.tag(1, LD);
          const s = w.fork();
          anyValue(w, item);
          w.ldelim(s);
        }
      } else {
        const o = v as Record<string, unknown>;
        for (const k in o) {
          if (!Object.hasOwn(o, k)) continue;
          w.tag(1, LD);
          const kv = w.fork();
          keyValueBody(w, k, o[k]);
          w.ldelim(kv);
        }
      }
      w.ldelim(list);
      return;
    }
    default:
  }
}

export function keyValueBody(w: ProtoWriter, key: string, value: unknown): void {
  w.tag(1, LD);
  w.string(key);
  w.tag(2, LD);
  const s = w.fork();
  anyValue(w, value);
  w.ldelim(s);
}

/** `field` × KeyValue of every own key of `attrs`, in key order. */
export function attributes(w: ProtoWriter, attrs: Readonly<Record<string, unknown>>, field: number): void {
  for (const k in attrs) {
    if (!Object.hasOwn(attrs, k)) continue;
    w.tag(field, LD);
    const s = w.fork();
    keyValueBody(w, k, attrs[k]);
    w.ldelim(s);
  }
}

export function stringField(field: number, s: string): Uint8Array {
  return encoded((w) => {
    w.tag(field, LD);
    w.string(s);
  });
}
