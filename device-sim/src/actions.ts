/**
 * The faults and events a scenario (or a test, through Simulator.apply) can inject. One zod schema
 * per action so a scenario file error names the field path (`events[2].params.channel`).
 */
import { z } from 'zod';
import { COMMAND_VERBS } from '../../src/protocol/types.js';
import { MEASURED_CHANNELS } from './channels.js';

const DURATION_RE = /^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h)\s*)+$/;
const PART_RE = /(\d+(?:\.\d+)?)\s*(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "90s", "1m30s", "250ms", "2h" or a number of ms → ms. */
export function parseDuration(text: string): number | null {
  if (!DURATION_RE.test(text)) return null;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(PART_RE)) ms += Number(n) * (UNIT_MS[unit ?? 'ms'] ?? 1);
  return Math.round(ms);
}

export const durationSchema = z
  .union([z.number().nonnegative(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return Math.round(v);
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (e.g. 500ms, 90s, 5m, 1h30m, or ms as a number)` });
      return z.NEVER;
    }
    return ms;
  });

const none = z.object({}).strict().prefault({});
const severity = (dflt: number) => z.object({
  /** Resistance multiplier while the fault lasts. */
  severity: z.number().min(1).max(20).default(dflt),
}).strict().prefault({});

const ACTION_PARAMS = {
  venous_kink: severity(5),
  access_collapse: severity(4),
  return_disconnect: none,
  air_in_line: none,
  blood_leak: none,
  heater_failure: z.object({
    mode: z.enum(['off', 'runaway']).default('off'),
    /** true: the heater fails without the device noticing (no EV); only TR shows it. */
    silent: z.boolean().default(false),
  }).strict().prefault({}),
  reactor_clotting: z.object({ ratePerMin: z.number().positive().max(10).default(0.5) }).strict().prefault({}),
  sensor_fault: z.object({
    channel: z.enum(MEASURED_CHANNELS),
    /** fault: the channel reads `!` / null; absent: the channel is left out of the frames. */
    mode: z.enum(['fault', 'absent']).default('fault'),
  }).strict(),
  clock_skew: z.object({ ms: z.number().int() }).strict(),
  unanswered_command: z.object({ count: z.number().int().min(1).default(1) }).strict().prefault({}),
  power_cycle: none,
  set_rate: z.object({ hz: z.number().int().min(1).max(100) }).strict(),
  command: z.object({
    verb: z.enum(COMMAND_VERBS),
    args: z.array(z.union([z.string(), z.number()])).default([]),
  }).strict(),
  internal_fault: z.object({
    code: z.string().regex(/^[A-Z0-9_]{1,32}$/).default('INTERNAL_FAULT'),
    text: z.string().max(120).default('Internal fault'),
  }).strict().prefault({}),
  link_drop: none,
  garbage_bytes: z.object({
    count: z.number().int().min(1).max(100_000).default(64),
    /** binary: random bytes; partial: the head of a frame cut short, as after a cable re-plug. */
    mode: z.enum(['binary', 'partial']).default('binary'),
  }).strict().prefault({}),
  bad_crc: z.object({ count: z.number().int().min(1).default(1) }).strict().prefault({}),
} as const;

export type ActionName = keyof typeof ACTION_PARAMS;
export const ACTION_NAMES = Object.keys(ACTION_PARAMS) as ActionName[];

/** Applied by the serial or MQTT link rather than the console (brief: link-level faults). */
export const LINK_ACTIONS: ReadonlySet<ActionName> = new Set(['link_drop', 'garbage_bytes', 'bad_crc']);

const deviceRef = z.union([z.string().min(1), z.number().int().nonnegative()]);

function actionSchema<A extends ActionName>(name: A) {
  return z.object({
    action: z.literal(name),
    /** Simulated time since the simulator started (scenario events; Simulator.apply: absent = now). */
    at: durationSchema.optional(),
    /** Device id or 0-based index; absent = every simulated console. */
    device: deviceRef.optional(),
    /** How long the condition lasts; absent = until the run ends (instant actions ignore it). */
    duration: durationSchema.optional(),
    params: ACTION_PARAMS[name] as (typeof ACTION_PARAMS)[A],
  }).strict();
}

export const simActionSchema = z.discriminatedUnion('action', [
  actionSchema('venous_kink'), actionSchema('access_collapse'), actionSchema('return_disconnect'),
  actionSchema('air_in_line'), actionSchema('blood_leak'), actionSchema('heater_failure'),
  actionSchema('reactor_clotting'), actionSchema('sensor_fault'), actionSchema('clock_skew'),
  actionSchema('unanswered_command'), actionSchema('power_cycle'), actionSchema('set_rate'),
  actionSchema('command'), actionSchema('internal_fault'), actionSchema('link_drop'),
  actionSchema('garbage_bytes'), actionSchema('bad_crc'),
]);

/** What a scenario file or a caller writes: `{ at?, action, device?, duration?: "30s" | ms, params? }`. */
export type SimActionInput = z.input<typeof simActionSchema>;
type Parsed = z.output<typeof simActionSchema>;
/** A validated action: times in ms, params with their defaults filled in. */
export type SimAction = Parsed extends infer P
  ? (P extends Parsed ? Omit<P, 'duration' | 'at'> & { atMs?: number; durationMs?: number } : never)
  : never;

export function toSimAction(parsed: Parsed): SimAction {
  const { duration, at, ...rest } = parsed;
  const out: Record<string, unknown> = { ...rest };
  if (at !== undefined) out.atMs = at;
  if (duration !== undefined) out.durationMs = duration;
  return out as SimAction;
}

export function formatIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => {
      const path = [prefix, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('');
      return `${path.replace(/^\./, '') || '(root)'}: ${i.message}`;
    })
    .join('; ');
}

/** Validates an action given in code (Simulator.apply); throws with field paths on a bad one. */
export function parseSimAction(input: SimActionInput): SimAction {
  const r = simActionSchema.safeParse(input);
  if (!r.success) throw new Error(`invalid simulator action: ${formatIssues(r.error)}`);
  return toSimAction(r.data);
}
