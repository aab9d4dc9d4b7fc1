/**
 * The alarm rule language, validated with zod at start.
 * A rule is one condition (`kind`) plus optional extra conditions (`or`) that raise the same alarm,
 * with IEC 60601-1-8 priority, on/off delays, deadband, latching and the session states it is active in.
 * Times in configuration are seconds (`…S`), as docs/alarms.md writes them; the evaluator works in ms.
 */
import { z } from 'zod';
import { SESSION_STATES } from '../protocol/types.js';

export const PrioritySchema = z.enum(['HIGH', 'MEDIUM', 'LOW']);
export const SessionStateSchema = z.enum(SESSION_STATES);
/** ICD §1 channel keys; unknown keys are allowed (newer firmware adds channels). */
const Channel = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a channel key such as PV or SQB');
const Seconds = z.number().finite().nonnegative();
const PositiveSeconds = z.number().finite().positive();
const OptionalSeconds = PositiveSeconds.nullable().default(null);

const ThresholdLevel = z.strictObject({ threshold: z.number().finite(), priority: PrioritySchema });
const DurationLevel = z.strictObject({ after: PositiveSeconds, priority: PrioritySchema });

/** Limit rules: `limit` (one level at the rule's priority) or `levels` (TMP_HIGH: MEDIUM > 100, HIGH > 150). */
const limitFields = {
  channel: Channel,
  limit: z.number().finite().optional(),
  levels: z.array(ThresholdLevel).min(1).optional(),
  /** A raised condition clears only `deadband` inside the limit (same unit as the limit). */
  deadband: z.number().finite().nonnegative().default(0),
};

const conditionShapes = {
  /** value > limit; with `percentOf`, limit and deadband are percent of that channel (QP > 30 % of QB). */
  high: { kind: z.literal('high'), ...limitFields, percentOf: Channel.optional() },
  low: { kind: z.literal('low'), ...limitFields, percentOf: Channel.optional() },
  /** abs(channel − setpoint) > limit, absolute or in percent of the setpoint (deadband likewise). */
  deviation: {
    kind: z.literal('deviation'), ...limitFields, setpoint: Channel, mode: z.enum(['absolute', 'percent']).default('absolute'),
  },
  /** value − (lowest value within the last `windowS`) > limit: a rise over a window (DPR, reactor clotting). */
  rise: { kind: z.literal('rise'), ...limitFields, windowS: PositiveSeconds },
  /** A detector reads 1 (ICD §1: AIR, BLD are 0 / 1). */
  detector: { kind: z.literal('detector'), channel: Channel },
  /**
   * The device has been in one of `inState` for longer than `after` (or `levels[].after`).
   * scope `session`: measured from the first entry into `inState` within the current session (circuit age).
   */
  stateDuration: {
    kind: z.literal('stateDuration'),
    inState: z.array(SessionStateSchema).min(1),
    scope: z.enum(['state', 'session']).default('state'),
    after: PositiveSeconds.optional(),
    levels: z.array(DurationLevel).min(1).optional(),
  },
} as const;

const ruleFields = {
  id: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'upper-case letters, digits and _'),
  enabled: z.boolean().default(true),
  /** Priority of a single-level condition and of every `or` condition. */
  priority: PrioritySchema,
  message: z.string().min(1),
  /** Session states in which the rule is evaluated; elsewhere it is suppressed by design (ISA-18.2). */
  states: z.union([z.literal('any'), z.array(SessionStateSchema).min(1)]).default(['RUNNING']),
  onDelayS: Seconds.default(0),
  offDelayS: Seconds.default(0),
  latching: z.boolean().default(false),
  /** An acknowledged alarm whose condition persists returns to UNACK after this time. */
  reannunciateS: OptionalSeconds,
  /** An unacknowledged alarm rises one priority after this time (and again after as long). */
  escalateAfterS: OptionalSeconds,
};

export const ConditionSchema = z.discriminatedUnion('kind', [
  z.strictObject(conditionShapes.high),
  z.strictObject(conditionShapes.low),
  z.strictObject(conditionShapes.deviation),
  z.strictObject(conditionShapes.rise),
  z.strictObject(conditionShapes.detector),
  z.strictObject(conditionShapes.stateDuration),
]);
export type Condition = z.output<typeof ConditionSchema>;

const orField = { or: z.array(ConditionSchema).optional() };

export const RuleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...conditionShapes.high, ...ruleFields, ...orField }),
  z.strictObject({ ...conditionShapes.low, ...ruleFields, ...orField }),
  z.strictObject({ ...conditionShapes.deviation, ...ruleFields, ...orField }),
  z.strictObject({ ...conditionShapes.rise, ...ruleFields, ...orField }),
  z.strictObject({ ...conditionShapes.detector, ...ruleFields, ...orField }),
  z.strictObject({ ...conditionShapes.stateDuration, ...ruleFields, ...orField }),
]).superRefine((rule, ctx) => {
  checkCondition(rule, [], ctx);
  rule.or?.forEach((c, i) => checkCondition(c, ['or', i], ctx));
});
export type Rule = z.output<typeof RuleSchema>;
/** A rule as written in a file, before defaults are applied. */
export type RuleInput = z.input<typeof RuleSchema>;

function checkCondition(c: Condition, path: Array<string | number>, ctx: z.RefinementCtx): void {
  if (c.kind === 'detector') return;
  const amount = c.kind === 'stateDuration' ? 'after' : 'limit';
  const given = c.kind === 'stateDuration' ? c.after : c.limit;
  if ((given === undefined) === (c.levels === undefined)) {
    ctx.addIssue({ code: 'custom', path: [...path, amount], message: `give exactly one of "${amount}" or "levels"` });
    return;
  }
  const levels = c.levels ?? [];
  for (let i = 1; i < levels.length; i++) {
    const prev = levels[i - 1] as { threshold?: number; after?: number; priority: string };
    const cur = levels[i] as { threshold?: number; after?: number; priority: string };
    const a = prev.threshold ?? prev.after ?? 0;
    const b = cur.threshold ?? cur.after ?? 0;
    // Later levels are more severe: further from normal, and never of a lower priority.
    const further = c.kind === 'low' ? b < a : b > a;
    if (!further) ctx.addIssue({ code: 'custom', path: [...path, 'levels', i], message: 'levels must move away from normal in order' });
    if (rank(cur.priority) < rank(prev.priority)) {
      ctx.addIssue({ code: 'custom', path: [...path, 'levels', i, 'priority'], message: 'a later level cannot have a lower priority' });
    }
  }
}

export const PRIORITY_RANK = { LOW: 1, MEDIUM: 2, HIGH: 3 } as const;
export const RANK_PRIORITY = [null, 'LOW', 'MEDIUM', 'HIGH'] as const;
export function rank(p: string): number {
  return PRIORITY_RANK[p as keyof typeof PRIORITY_RANK] ?? 0;
}

const Quiet = z.array(SessionStateSchema).default(['IDLE', 'ENDED']);

/** Technical alarm thresholds, gateway-wide. */
export const TechnicalSchema = z.strictObject({
  /**
   * ICD ambiguity: rules are activated by session state, which is unknown until the first `S` frame
   * (up to 5 s after a gateway restart). Absent data is never normal: evaluate as if in this state.
   */
  unknownStateAs: SessionStateSchema.default('RUNNING'),
  commLoss: z.strictObject({
    minSilenceS: PositiveSeconds.default(3),
    /** Silence limit is max(minSilenceS, periods × telemetry period). */
    periods: z.number().positive().default(3),
    priority: PrioritySchema.default('HIGH'),
    /** States in which silence is not an alarm (no patient connected). */
    quietStates: Quiet,
    reannunciateS: OptionalSeconds,
  }).prefault({}),
  sensorFault: z.strictObject({
    /** A faulted channel must read valid this long before SENSOR_FAULT_<CH> clears (anti-chatter). */
    offDelayS: Seconds.default(2),
    /** A required channel not reported for this long (device time) counts as a sensor fault. */
    staleS: PositiveSeconds.default(5),
    requiredChannels: z.array(Channel).default(['QB', 'PA', 'PV', 'AIR', 'BLD', 'TR']),
    quietStates: Quiet,
  }).prefault({}),
  frameLoss: z.strictObject({
    percent: z.number().positive().default(1),
    windowS: PositiveSeconds.default(60),
    priority: PrioritySchema.default('MEDIUM'),
  }).prefault({}),
  discardRate: z.strictObject({
    /** Raised when, within windowS, discards exceed BOTH perWindow and percent of all lines. */
    perWindow: z.number().nonnegative().default(5),
    percent: z.number().nonnegative().default(1),
    windowS: PositiveSeconds.default(60),
    priority: PrioritySchema.default('LOW'),
  }).prefault({}),
  clockSkew: z.strictObject({
    maxOffsetS: PositiveSeconds.default(2),
    priority: PrioritySchema.default('LOW'),
  }).prefault({}),
  /** Samples arriving later than this behind the console's clock (a backlog in front of the gateway). */
  dataDelay: z.strictObject({
    maxLateS: PositiveSeconds.default(5),
    priority: PrioritySchema.default('MEDIUM'),
  }).prefault({}),
  deviceAlarms: z.strictObject({
    /** Device EV priorities whose alarms latch (stay RTN_UNACK until acknowledged after the device clears). */
    latching: z.array(PrioritySchema).default(['HIGH']),
    /** Device EV code -> rule id, so that one condition reported by device and gateway is one instance. */
    codes: z.record(z.string(), z.string().regex(/^[A-Z][A-Z0-9_]*$/)).default({
      AIR_DETECTED: 'AIR_IN_LINE',
      AIR_IN_LINE: 'AIR_IN_LINE',
      BLOOD_LEAK: 'BLOOD_LEAK',
      BLD_DETECTED: 'BLOOD_LEAK',
    }),
    reannunciateS: OptionalSeconds,
    escalateAfterS: OptionalSeconds,
  }).prefault({}),
  /** IEC 60601-1-8 AUDIO PAUSED duration per device. */
  audioPauseS: PositiveSeconds.default(120),
  /** IEC 62682: shelving is time-limited. */
  maxShelveMinutes: z.number().positive().max(480).default(480),
  flood: z.strictObject({
    windowS: PositiveSeconds.default(600),
    /** ISA-18.2 flood: more than this many alarms within the window. */
    threshold: z.number().int().nonnegative().default(10),
  }).prefault({}),
});
export type TechnicalConfig = z.output<typeof TechnicalSchema>;

/** A partial rule applied on top of a rule of the same id (per model, per device). */
export const RulePatchSchema = z.record(z.string(), z.unknown());
export type RulePatch = Record<string, unknown>;

/** A resolved, validated profile: the rules and the per-model / per-device patches on top of them. */
export interface AlarmProfile {
  rules: readonly Rule[];
  models: Readonly<Record<string, Readonly<Record<string, RulePatch>>>>;
  devices: Readonly<Record<string, Readonly<Record<string, RulePatch>>>>;
  technical: TechnicalConfig;
}

/** A profile file (YAML or JSON): overrides on top of the built-in default profile. */
export const ProfileFileSchema = z.strictObject({
  /** Rules replacing (by id, merged field by field) or adding to the default rules. */
  defaults: z.array(z.looseObject({ id: z.string() })).optional(),
  /** Per device model (HELLO `model`): rule id -> partial rule. */
  models: z.record(z.string(), z.record(z.string(), RulePatchSchema)).optional(),
  /** Per device id: rule id -> partial rule (applied after the model's). */
  devices: z.record(z.string(), z.record(z.string(), RulePatchSchema)).optional(),
  technical: z.record(z.string(), z.unknown()).optional(),
});
export type ProfileFile = z.input<typeof ProfileFileSchema>;
