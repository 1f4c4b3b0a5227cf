// The `capture:` config section: caps of on-demand captures over HTTP (/capture) and the triggered
// captures (off by default). Snake_case keys like the rest of the file; every limit has a ceiling.
import { z } from 'zod';
import { duration } from '../config/duration.ts';

const MiB = 1024 * 1024;

const rule = z.strictObject({
  /** Event name that counts, e.g. podnet.packet.drop, podnet.tcp.reset. */
  event: z.string().min(1),
  /** Only events with this `podnet.event.type` (e.g. PACKETLOSS, TCPRESET_NOSOCK). */
  type: z.string().min(1).optional(),
  /** Only events with this `error.type` (kernel drop reason, e.g. NETFILTER_DROP). */
  reason: z.string().min(1).optional(),
  /** Only this pod (namespace/name); absent = any pod (not the host or plain netns). */
  pod: z.string().min(1).optional(),
  /** Events needed within `window` to trigger. */
  count: z.number().int().min(1).max(1_000_000).default(1),
  window: duration(100, 3_600_000).default(10_000),
  /** How long the triggered capture runs. */
  duration: duration(100, 600_000).default(10_000),
  /** Bytes kept per packet, payload included; unset = the IP and transport headers only. */
  snaplen: z.number().int().min(64).max(65535).optional(),
  /** Size cap of one triggered file. */
  max_bytes: z
    .number()
    .int()
    .min(4096)
    .max(1024 * MiB)
    .default(16 * MiB),
  /** After a capture of a pod for this rule, no new one for that pod and rule for this long. */
  cooldown: duration(0, 86_400_000).default(60_000),
  /** Capture only the event's 5-tuple (both directions) instead of all the pod's traffic. */
  match_tuple: z.boolean().default(true),
});

export type TriggerRuleConfig = z.output<typeof rule>;

const TRIGGER_DEFAULTS = {
  enabled: false,
  dir: '/var/lib/podnet/captures',
  max_files: 20,
  max_total_bytes: 256 * MiB,
  rules: [],
};

export const captureSchema = z
  .strictObject({
    /** Longest /capture request; longer requests are cut to this (the response says so). */
    max_duration: duration(100, 3_600_000).default(60_000),
    /** Largest /capture response. */
    max_bytes: z
      .number()
      .int()
      .min(4096)
      .max(4096 * MiB)
      .default(64 * MiB),
    /** Captures running at once (on demand and triggered together); more are refused (429) or skipped. */
    max_concurrent: z.number().int().min(0).max(64).default(2),
    /** Largest snaplen a /capture request may ask for (default: headers only). */
    max_snaplen: z.number().int().min(64).max(65535).default(65535),
    triggers: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Where triggered captures are written (created 0700; files 0600). */
        dir: z.string().min(1).default(TRIGGER_DEFAULTS.dir),
        /** Files kept; the oldest are deleted first. */
        max_files: z.number().int().min(1).max(10_000).default(20),
        /** Bytes kept over all files; the oldest are deleted first. */
        max_total_bytes: z
          .number()
          .int()
          .min(4096)
          .max(64 * 1024 * MiB)
          .default(256 * MiB),
        rules: z.array(rule).max(64).default([]),
      })
      .default(TRIGGER_DEFAULTS),
  })
  .default({
    max_duration: 60_000,
    max_bytes: 64 * MiB,
    max_concurrent: 2,
    max_snaplen: 65535,
    triggers: TRIGGER_DEFAULTS,
  });

export type CaptureConfig = z.output<typeof captureSchema>;
