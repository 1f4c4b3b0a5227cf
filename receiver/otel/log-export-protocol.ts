// The messages between the event pipeline (main thread) and the export worker (log-export-worker.ts).
//
// Records travel in batches as one flat array of small integers and the probe's attribute values, sent as
// its JSON text (JSON.stringify + JSON.parse cost less than half of structured cloning the array). Strings that repeat (event names, types, attribute keys),
// kernel stacks (the probes cache them per stack id) and the entity attribute sets (one frozen object per
// netns) go once into a table both sides keep; a record refers to them by index. The table is bounded:
// past TABLE_MAX entries the main thread starts a new one (`reset` on the next batch).
//
// String attribute values up to INTERN_MAX characters go into the table too (addresses, interface names,
// commands, kinds: most repeat): the JSON of a batch is then mostly small integers, and the worker reads
// each such value once per table (log-export-worker.ts) and keeps its encoding (protobuf/logs.ts).
//
// One record in `data`:
//   nameIdx, typeIdx, severityIdx (severity.ts), time seconds - TIME_BASE, time nanoseconds, entityIdx, stackIdx (-1: none), n,
//   then n × (key, value), `key` saying how to read `value` (attrKey, attrValue):
//   0 ≤ key < KEY_INTERNED: key index; the value as it is;
//   key ≥ KEY_INTERNED: key index + KEY_INTERNED; the value is the table index of a string;
//   key < 0: key index -1 - key; the value is a non-finite number sent as its string.
import type { AttributeValue } from '../probe/types.ts';
import type { LogsExportSettings } from './exporters.ts';

export const TABLE_MAX = 50_000;
/** Longest string attribute value put into the table (longer ones travel in the batch's JSON). */
export const INTERN_MAX = 256;
/**
 * Added to a key index: its value is a string in the table. Far above any table index (TABLE_MAX plus one
 * batch's entries), and the sum stays a V8 small integer (below 2^30): no heap number per attribute.
 */
export const KEY_INTERNED = 2 ** 29;
/**
 * Subtracted from a record's time in seconds, so that it is a V8 small integer (below 2^30 from 2020 to
 * 2054; outside, a heap number, still exact): one allocation less per record on each side.
 */
export const TIME_BASE = 1_600_000_000;

/** The table index of the attribute key in a record's `key` slot. */
export function attrKey(key: number): number {
  return key >= KEY_INTERNED ? key - KEY_INTERNED : key >= 0 ? key : -1 - key;
}

/** The attribute value of the pair whose `key` slot is at data[k] (the value at data[k + 1]). */
export function attrValue(data: readonly unknown[], k: number, table: readonly TableEntry[]): AttributeValue {
  const key = data[k] as number;
  const v = data[k + 1];
  if (key >= KEY_INTERNED) return table[v as number] as string;
  return key >= 0 ? (v as AttributeValue) : Number(v);
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
  /** JSON of the flat record array. */
  readonly json: string;
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
