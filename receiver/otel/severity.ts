// The one severity table: a probe's Severity, its index on the wire to the log export worker
// (log-export-protocol.ts), and the OTel SeverityNumber and text a log record carries.
import { SeverityNumber } from '@opentelemetry/api';
import type { Severity } from '../probe/types.ts';

/** Index = the severity's number on the wire. */
export const SEVERITIES: readonly { readonly text: Severity; readonly number: SeverityNumber }[] = [
  { text: 'DEBUG', number: SeverityNumber.DEBUG },
  { text: 'INFO', number: SeverityNumber.INFO },
  { text: 'WARN', number: SeverityNumber.WARN },
  { text: 'ERROR', number: SeverityNumber.ERROR },
];

const INDEX = new Map<Severity, number>(SEVERITIES.map((s, i) => [s.text, i]));

/** The wire index of `s`. */
export function severityIndex(s: Severity): number {
  return INDEX.get(s)!;
}
