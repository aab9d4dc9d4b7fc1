/**
 * ICD §1 "Commands to the device": one validation shared by the gateway (before it sends) and the
 * simulator (when it answers), so both sides agree on ERR vs REJ vs OK.
 */
import { COMMAND_VERBS, SESSION_STATES, parseDecimal } from './types.js';
import type { Command, CommandArg, CommandVerb, SessionState } from './types.js';

/** ICD §1: cmd_id is 1–8 characters of [A-Za-z0-9]. */
export const CMD_ID_RE = /^[A-Za-z0-9]{1,8}$/;
/** ICD §1 `START`: session_id is 1–32 characters of [A-Za-z0-9-]. */
export const SESSION_ID_RE = /^[A-Za-z0-9-]{1,32}$/;

export type SetpointChannel = 'QB' | 'QP' | 'TR' | 'HEP';

/** ICD §1 `SET` limits (inclusive). QP is further limited to 30 % of QB (QP_MAX_FRACTION_OF_QB). */
export const SETPOINT_LIMITS: Record<SetpointChannel, { min: number; max: number; unit: string }> = {
  QB: { min: 0, max: 300, unit: 'mL/min' },
  QP: { min: 0, max: 60, unit: 'mL/min' },
  TR: { min: 35, max: 39, unit: '°C' },
  HEP: { min: 0, max: 20, unit: 'mL/h' },
};
export const QP_MAX_FRACTION_OF_QB = 0.3;
/** ICD §1 `RATE`: telemetry rate in Hz. */
export const RATE_LIMITS = { min: 1, max: 100 } as const;

export interface CommandContext {
  /** The device's session state as last reported; null when not known yet. */
  state: SessionState | null;
  /** Current setpoints (from `SQB`, `SQP`, `STR`, `SHEP`); null or absent when not known. */
  setpoints: Partial<Record<SetpointChannel, number | null>>;
}

export type CommandCheck =
  | { ok: true; cmd: Command }
  | { ok: false; code: 'malformed' | 'out_of_limits' | 'wrong_state'; detail: string };

const ALL_BUT = (excluded: SessionState): readonly SessionState[] =>
  Object.freeze(SESSION_STATES.filter((s) => s !== excluded));

const ACCEPTED: Record<CommandVerb, readonly SessionState[] | 'any'> = {
  ID: 'any',
  SYNC: 'any',
  RATE: 'any',
  SET: ALL_BUT('FAULT'),
  PRIME: Object.freeze(['IDLE'] as const),
  START: Object.freeze(['PRIMED'] as const),
  PAUSE: Object.freeze(['RUNNING'] as const),
  RESUME: Object.freeze(['PAUSED'] as const),
  RINSEBACK: Object.freeze(['RUNNING', 'PAUSED'] as const),
  END: ALL_BUT('IDLE'),
  RESET: Object.freeze(['ENDED', 'FAULT'] as const),
  SILENCE: 'any',
};

/** The states in which the device accepts `verb` (ICD §1 table, "accepted in"). */
export function acceptedStates(verb: CommandVerb): readonly SessionState[] | 'any' {
  return ACCEPTED[verb];
}

const ARITY: Record<CommandVerb, number> = {
  ID: 0, SYNC: 1, RATE: 1, SET: 2, PRIME: 0, START: 1, PAUSE: 0, RESUME: 0,
  RINSEBACK: 0, END: 0, RESET: 0, SILENCE: 0,
};

const VERBS: ReadonlySet<string> = new Set(COMMAND_VERBS);
const UNSIGNED_RE = /^[0-9]+$/;

/**
 * A number argument: a JSON number (MQTT) or its ICD decimal text (serial, where every arg is text).
 * null when it is neither.
 */
function numberArg(arg: unknown): number | null {
  const n = typeof arg === 'number' ? arg : typeof arg === 'string' ? parseDecimal(arg) : NaN;
  if (!Number.isFinite(n)) return null;
  return n === 0 ? 0 : n; // no -0
}

/** A non-negative integer argument (epoch ms, Hz). */
function integerArg(arg: unknown): number | null {
  if (typeof arg === 'string' && !UNSIGNED_RE.test(arg)) return null;
  const n = numberArg(arg);
  return n !== null && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

const malformed = (detail: string): CommandCheck => ({ ok: false, code: 'malformed', detail });
const outOfLimits = (detail: string): CommandCheck => ({ ok: false, code: 'out_of_limits', detail });

/**
 * Checks a command against ICD §1. Order: malformed (ERR) before wrong_state before out_of_limits
 * (both REJ). With `ctx.state` null the state check is skipped: the gateway lets the device, which
 * knows its state, answer REJ rather than block a command on missing knowledge.
 */
export function checkCommand(cmd: { cmdId: string; verb: string; args: unknown[] }, ctx: CommandContext): CommandCheck {
  if (typeof cmd.cmdId !== 'string' || !CMD_ID_RE.test(cmd.cmdId)) {
    return malformed('cmd_id must be 1-8 characters of [A-Za-z0-9]');
  }
  if (!VERBS.has(cmd.verb)) return malformed(`unknown verb ${JSON.stringify(cmd.verb)}`);
  const verb = cmd.verb as CommandVerb;
  if (!Array.isArray(cmd.args)) return malformed('args must be a list');
  const args = cmd.args;
  if (args.length !== ARITY[verb]) {
    return malformed(`${verb} takes ${ARITY[verb]} argument(s), got ${args.length}`);
  }
  const parsed = parseArgs(verb, args);
  if (typeof parsed === 'string') return malformed(parsed);

  const accepted = ACCEPTED[verb];
  if (ctx.state !== null && accepted !== 'any' && !accepted.includes(ctx.state)) {
    return { ok: false, code: 'wrong_state', detail: `state ${ctx.state} does not accept ${verb}` };
  }

  if (verb === 'RATE') {
    const hz = parsed[0] as number;
    if (hz < RATE_LIMITS.min || hz > RATE_LIMITS.max) {
      return outOfLimits(`RATE ${hz} outside ${RATE_LIMITS.min}-${RATE_LIMITS.max} Hz`);
    }
  } else if (verb === 'SET') {
    const limit = checkSetpoint(parsed[0] as SetpointChannel, parsed[1] as number, ctx);
    if (limit !== null) return outOfLimits(limit);
  }
  return { ok: true, cmd: { cmdId: cmd.cmdId, verb, args: parsed } };
}

/** Normalised args, or the reason they are malformed. Arity is already checked. */
function parseArgs(verb: CommandVerb, args: unknown[]): CommandArg[] | string {
  switch (verb) {
    case 'SYNC': {
      const ms = integerArg(args[0]);
      return ms === null ? 'SYNC epoch_ms must be a non-negative integer' : [ms];
    }
    case 'RATE': {
      // ICD: "hz (1–100)"; fractional rates are not part of the contract.
      const hz = integerArg(args[0]);
      return hz === null ? 'RATE hz must be an integer' : [hz];
    }
    case 'SET': {
      const channel = args[0];
      if (typeof channel !== 'string' || !Object.hasOwn(SETPOINT_LIMITS, channel)) {
        return `SET channel must be one of ${Object.keys(SETPOINT_LIMITS).join(', ')}`;
      }
      const value = numberArg(args[1]);
      return value === null ? 'SET value must be a decimal number' : [channel, value];
    }
    case 'START': {
      const id = args[0];
      if (typeof id !== 'string' || !SESSION_ID_RE.test(id)) return 'START session_id must be 1-32 characters of [A-Za-z0-9-]';
      // ICD: `-` fits the START grammar but is what an `S` frame writes for "no session"; the safe
      // reading refuses it rather than run a session that every S frame would report as none.
      return id === '-' ? "START session_id '-' means no session" : [id];
    }
    default:
      return [];
  }
}

/** null when `value` is allowed for `channel`; otherwise why not. */
function checkSetpoint(channel: SetpointChannel, value: number, ctx: CommandContext): string | null {
  const { min, max, unit } = SETPOINT_LIMITS[channel];
  if (value < min || value > max) return `${channel} ${value} outside ${min}-${max} ${unit}`;
  // ICD: "QP ... at most 30 % of QB". Safe reading: the ratio is an invariant of the pair, so it is
  // checked when either setpoint changes (a QB lowered under QP/0.3 would breach it just the same).
  // Tiny epsilon: 0.3 * QB is not exact in binary (0.3 * 110 = 33.00000000000001).
  const fraction = QP_MAX_FRACTION_OF_QB;
  if (channel === 'QP') {
    const qb = ctx.setpoints.QB;
    if (typeof qb === 'number' && value > qb * fraction + 1e-9) {
      return `QP ${value} above 30 % of QB ${qb} (max ${round3(qb * fraction)} ${unit})`;
    }
  } else if (channel === 'QB') {
    const qp = ctx.setpoints.QP;
    if (typeof qp === 'number' && qp > value * fraction + 1e-9) {
      return `QB ${value} would put QP ${qp} above 30 % of QB (min QB ${round3(qp / fraction)} ${unit})`;
    }
  }
  return null;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
