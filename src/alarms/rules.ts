/**
 * Alarm profiles: the default profile, profile files (YAML or JSON) validated with zod at start, and the
 * rules that apply to one device (defaults, then its model's patches, then its own).
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { DEFAULT_RULES } from './defaultProfile.js';
import {
  ProfileFileSchema, RuleSchema, TechnicalSchema,
  type AlarmProfile, type Rule, type RulePatch,
} from './ruleSchema.js';

export * from './ruleSchema.js';
export { DEFAULT_RULES } from './defaultProfile.js';

export type ProfileResult = { ok: true; profile: AlarmProfile } | { ok: false; errors: string[] };

/** A bad profile file: thrown at start only (configuration is validated once). */
export class ProfileError extends Error {
  constructor(readonly file: string, readonly errors: string[]) {
    super(`alarm profile ${file} is invalid:\n  ${errors.join('\n  ')}`);
    this.name = 'ProfileError';
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function formatIssues(issues: z.core.$ZodIssue[], prefix: Array<string | number>): string[] {
  return issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? i.keys : [null];
    return keys.map((k) => {
      const path = [...prefix, ...i.path.map(String), ...(k === null ? [] : [k])].join('.');
      // One line per unknown key, worded as the API's issues (src/errors.ts zodIssues).
      return `${path || '(root)'}: ${k === null ? i.message : `Unrecognized key: ${JSON.stringify(k)}`}`;
    }).join('\n');
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch === undefined ? base : patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(base[k], v);
  return out;
}

/** A patch replaces the fields it names; a patch that changes `kind` must give the new kind's fields. */
function applyPatch(rule: Record<string, unknown> | undefined, patch: RulePatch): Record<string, unknown> {
  if (!rule) return { ...patch };
  if (patch.kind !== undefined && patch.kind !== rule.kind) return { ...patch, id: rule.id };
  const out: Record<string, unknown> = { ...rule };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null && !(k === 'reannunciateS' || k === 'escalateAfterS')) delete out[k];
    else out[k] = v;
  }
  return out;
}

function parseRule(raw: unknown, path: Array<string | number>, errors: string[]): Rule | null {
  const r = RuleSchema.safeParse(raw);
  if (r.success) return r.data;
  errors.push(...formatIssues(r.error.issues, path));
  return null;
}

function checkPatches(
  section: 'models' | 'devices', patches: Record<string, Record<string, RulePatch>>,
  bases: Array<Map<string, Rule>>, errors: string[],
): void {
  for (const [key, byRule] of Object.entries(patches)) {
    for (const [ruleId, patch] of Object.entries(byRule)) {
      if (patch.id !== undefined && patch.id !== ruleId) {
        errors.push(`${section}.${key}.${ruleId}.id: must be "${ruleId}" (the key) or absent`);
        continue;
      }
      for (const base of bases) {
        const before = errors.length;
        parseRule(applyPatch(base.get(ruleId), { ...patch, id: ruleId }), [section, key, ruleId], errors);
        if (errors.length > before) break;
      }
    }
  }
}

/**
 * Validates a profile file's content on top of `base` (default: the built-in profile). Errors name the
 * field path, e.g. `devices.MSC-0001.PV_HIGH.limit: Invalid input: expected number, received string`.
 */
export function parseProfile(input: unknown, base: AlarmProfile = defaultProfile): ProfileResult {
  const errors: string[] = [];
  const file = ProfileFileSchema.safeParse(input ?? {});
  if (!file.success) return { ok: false, errors: formatIssues(file.error.issues, []) };
  const f = file.data;

  const rules = new Map<string, Rule>(base.rules.map((r) => [r.id, r]));
  f.defaults?.forEach((patch, i) => {
    const rule = parseRule(applyPatch(rules.get(patch.id), patch), ['defaults', i], errors);
    if (rule) rules.set(rule.id, rule);
  });

  const technical = TechnicalSchema.safeParse(deepMerge(base.technical, f.technical ?? {}));
  if (!technical.success) errors.push(...formatIssues(technical.error.issues, ['technical']));

  const models = { ...base.models, ...(f.models ?? {}) };
  const devices = { ...base.devices, ...(f.devices ?? {}) };
  // Every combination a device can resolve to must be valid now, not when that device first talks.
  checkPatches('models', models, [rules], errors);
  const modelBases = [rules, ...Object.values(models).map((p) => patched(rules, p))];
  checkPatches('devices', devices, modelBases, errors);

  if (errors.length > 0 || !technical.success) return { ok: false, errors };
  return {
    ok: true,
    profile: deepFreeze({ rules: [...rules.values()], models, devices, technical: technical.data }),
  };
}

function patched(rules: Map<string, Rule>, byRule: Record<string, RulePatch>): Map<string, Rule> {
  const out = new Map(rules);
  for (const [ruleId, patch] of Object.entries(byRule)) {
    const r = RuleSchema.safeParse(applyPatch(rules.get(ruleId), { ...patch, id: ruleId }));
    if (r.success) out.set(ruleId, r.data);
  }
  return out;
}

/** Reads a profile file (`.yaml`/`.yml` or `.json`) and validates it; throws ProfileError at start. */
export function loadProfile(file: string, base: AlarmProfile = defaultProfile): AlarmProfile {
  let raw: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ProfileError(file, [`(file): ${(err as Error).message}`]);
  }
  const r = parseProfile(raw, base);
  if (!r.ok) throw new ProfileError(file, r.errors);
  return r.profile;
}

/** The enabled rules for one device: profile rules, then its model's patches, then the device's own. */
export function resolveRules(profile: AlarmProfile, deviceId: string, model: string | null): Rule[] {
  let rules = new Map<string, Rule>(profile.rules.map((r) => [r.id, r]));
  // Model and id come from the device's HELLO: data, so only own keys count (never `constructor`).
  if (model !== null && Object.hasOwn(profile.models, model)) rules = patched(rules, profile.models[model]);
  if (Object.hasOwn(profile.devices, deviceId)) rules = patched(rules, profile.devices[deviceId]);
  return [...rules.values()].filter((r) => r.enabled);
}

function buildDefault(): AlarmProfile {
  const errors: string[] = [];
  const rules = DEFAULT_RULES.map((r, i) => parseRule(r, ['DEFAULT_RULES', i], errors));
  if (errors.length > 0) throw new Error(`built-in alarm profile is invalid: ${errors.join('; ')}`);
  return deepFreeze({ rules: rules as Rule[], models: {}, devices: {}, technical: TechnicalSchema.parse({}) });
}

/** The default profile for the MSC circuit (frozen): docs/alarms.md, "Default profile". */
export const defaultProfile: AlarmProfile = buildDefault();
