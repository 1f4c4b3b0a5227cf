// The project's one logger. Structured JSON (pino) on stderr so stdout stays free for data
// (the JSON-lines event sink, `podnet events`, `podnet probes --json`).
import { pino } from 'pino';

const level = process.env['PODNET_LOG_LEVEL'] ?? (process.env['CI'] ? 'warn' : 'info');

export const log: pino.Logger = pino({ name: 'podnet', level }, pino.destination(2));

export type Logger = pino.Logger;

/** A logger for one component, e.g. `childLogger('bpf')`; the component shows as `component` in each line. */
export function childLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return log.child({ component, ...bindings });
}
