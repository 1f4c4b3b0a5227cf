// The messages between the event pipeline (main thread) and the export worker (log-export-worker.ts).
//
// Records travel in batches as one flat Float64Array of numbers (`data`), whose buffer is transferred to
// the worker (no serialization, no copy, no JavaScript array per batch on either side). Strings that
// repeat (event names, types, attribute keys), kernel stacks (the probes cache them per stack id) and the
// entity attribute sets (one frozen object per netns) go once into a table both sides keep; a record
// refers to them by index. String attribute values up to INTERN_MAX characters go into the table too
// (addresses, interface names, commands, kinds: most repeat), and the worker keeps each one's encoding
// (protobuf/logs.ts). What is neither a number nor such a string (booleans, arrays, longer strings)
// travels in the batch's `extra` array (structured clone; usually empty). The table is bounded: past
// TABLE_MAX entries or TABLE_CHARS_MAX characters the main thread starts a new one (`reset` on the next
// batch).
//
// One record in `data`:
//   nameIdx, typeIdx, severityIdx (severity.ts), time seconds, time nanoseconds, entityIdx, stackIdx (-1: none), n,
//   then n × (key, value), `key` saying how to read `value` (attrKey, attrValue):
//   key < KEY_EXTRA: the key's table index; the value is the attribute's number (NaN, ±Infinity, -0 too);
//   KEY_EXTRA ≤ key < KEY_INTERNED: index + KEY_EXTRA; the value is an index into `extra`;
//   key ≥ KEY_INTERNED: index + KEY_INTERNED; the value is the table index of a string.
import type { AttributeValue } from '../probe/types.ts';
import type { LogsExportSettings } from './exporters.ts';

export const TABLE_MAX = 50_000;
/**
 * The table also starts over past this many characters of strings: with distinct long attribute values
 * (up to INTERN_MAX each) it holds ~2 MB of text on each side and their encodings in the worker, not
 * TABLE_MAX × INTERN_MAX.
 */
export const TABLE_CHARS_MAX = 1_000_000;
/** Longest string attribute value put into the table (longer ones travel in `extra`). */
export const INTERN_MAX = 256;
/** Added to a key index: the value is an index into the batch's `extra` (far above any table index). */
export const KEY_EXTRA = 2 ** 28;
/** Added to a key index: the value is a string in the table. */
export const KEY_INTERNED = 2 ** 29;

/** The table index of the attribute key in a record's `key` slot. */
export function attrKey(key: number): number {
  return key >= KEY_INTERNED ? key - KEY_INTERNED : key >= KEY_EXTRA ? key - KEY_EXTRA : key;
}

/** The attribute value of the pair whose `key` slot is at data[k] (the value at data[k + 1]). */
export function attrValue(
  data: Float64Array,
  k: number,
  table: readonly TableEntry[],
  extra: readonly unknown[],
): AttributeValue {
  const key = data[k]!;
  const v = data[k + 1]!;
  if (key >= KEY_INTERNED) return table[v] as string;
  return key >= KEY_EXTRA ? (extra[v] as AttributeValue) : v;
}

/** Attribute limits set in the environment: the worker takes the SDK path, which applies them. */
export const ATTRIBUTE_LIMITS_SET = [
  'OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
].some((k) => (process.env[k] ?? '') !== '');

export type TableEntry = string | readonly string[] | Readonly<Record<string, AttributeValue>>;

export interface BatchMessage {
  readonly t: 'batch';
  /** Clear the table before appending `add`. */
  readonly reset: boolean;
  /** New table entries, in index order. */
  readonly add: TableEntry[];
  readonly n: number;
  /** The records (its buffer is transferred). */
  readonly data: Float64Array<ArrayBuffer>;
  /** Attribute values that are neither numbers nor table strings. */
  readonly extra: unknown[];
}

export type ToWorker =
  | BatchMessage
  | { readonly t: 'flush'; readonly id: number }
  | { readonly t: 'shutdown'; readonly id: number };

/** Outcome deltas since the previous message. */
export interface CountsMessage {
  readonly t: 'counts';
  readonly sent: number;
  readonly lostExportFailed: number;
  readonly lostQueueFull: number;
  /** Records in the SDK batch queue now. */
  readonly queued: number;
  /** Set when an export failed: its error. */
  readonly error?: string;
}

export type FromWorker =
  | CountsMessage
  | { readonly t: 'done'; readonly id: number }
  | { readonly t: 'ready' }
  | { readonly t: 'log'; readonly level: 'warn' | 'error'; readonly msg: string; readonly err?: string };

export interface WorkerInit {
  readonly settings: LogsExportSettings;
  readonly resource: Readonly<Record<string, AttributeValue>>;
  readonly schemaUrl?: string | undefined;
  readonly scopeName: string;
  readonly scopeVersion: string;
}
