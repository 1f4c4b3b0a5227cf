// One row of the static MIB field table (`fields.ts`).
export type SnmpField = readonly [
  file: 'snmp' | 'netstat' | 'snmp6',
  group: string,
  field: string,
  metric: string,
  kind: 'counter' | 'gauge',
  unit: string,
  enabled: boolean,
  /** Multiply the kernel value by this (ms → s). */
  scale?: number,
];
