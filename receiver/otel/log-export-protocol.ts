// The messages between the event pipeline (main thread) and the export worker (log-export-worker.ts).
//
// Records travel in batches as one flat array of small integers and the probe's attribute values, sent as
// its JSON text (JSON.stringify + JSON.parse cost less than half of structured cloning the array). Strings that repeat (event names, types, attribute keys),
// kernel stacks (the probes cache them per stack id) and the entity attribute sets (one frozen object per
// netns) go once into a table both sides keep; a record refers to them by index. The table is bounded:
// past TABLE_MAX entries the main thread starts a new one (`reset` on the next batch).
//
// One record in `data`:
//   nameIdx, typeIdx, severityIdx (severity.ts), time seconds, time nanoseconds, entityIdx, stackIdx (-1: none), n,
//   then n × (keyIdx, value); keyIdx < 0 (-1 - keyIdx) marks a non-finite number sent as its string.
import type { AttributeValue } from '../probe/types.ts';
import type { LogsExportSettings } from './exporters.ts';

export const TABLE_MAX = 50_000;

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
