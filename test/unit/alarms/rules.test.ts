import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ProfileError, defaultProfile, loadProfile, parseProfile, resolveRules, type AlarmProfile,
} from '../../../src/alarms/rules.js';

const dir = mkdtempSync(join(tmpdir(), 'msc-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ok(input: unknown): AlarmProfile {
  const r = parseProfile(input);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.profile;
}
function errors(input: unknown): string[] {
  const r = parseProfile(input);
  if (r.ok) throw new Error('expected the profile to be rejected');
  return r.errors;
}

describe('default profile (table)', () => {
  const byId = new Map(defaultProfile.rules.map((r) => [r.id, r]));
  // id, priority, on-delay s, deadband, latching, states
  const table: Array<[string, string, number, number | null, boolean, string[] | 'any']> = [
    ['AIR_IN_LINE', 'HIGH', 0, null, true, ['SELFTEST', 'PRIMING', 'PRIMED', 'RUNNING', 'PAUSED', 'RINSEBACK', 'ENDED', 'FAULT']],
    ['BLOOD_LEAK', 'HIGH', 0, null, true, ['RUNNING', 'PAUSED', 'RINSEBACK']],
    ['PV_HIGH', 'HIGH', 2, 10, true, ['RUNNING']],
    ['PV_LOW', 'HIGH', 2, 5, true, ['RUNNING']],
    ['PA_LOW', 'HIGH', 3, 10, false, ['RUNNING']],
    ['TMP_HIGH', 'MEDIUM', 5, 5, false, ['RUNNING']],
    ['DPR_HIGH', 'MEDIUM', 10, 5, false, ['RUNNING']],
    ['TR_DEVIATION', 'MEDIUM', 60, 0.2, false, ['RUNNING', 'PAUSED', 'PRIMED']],
    ['TR_CRITICAL', 'HIGH', 10, 0.2, true, ['RUNNING', 'PAUSED', 'PRIMED']],
    ['QB_DEVIATION', 'MEDIUM', 10, 2, false, ['RUNNING']],
    ['PLASMA_FRACTION', 'MEDIUM', 10, 1, false, ['RUNNING']],
    ['PUMP_STOPPED', 'MEDIUM', 0, null, false, 'any'],
    ['PH_LOW', 'MEDIUM', 30, 0.02, false, ['RUNNING']],
    ['DO_LOW', 'LOW', 60, 2, false, ['RUNNING']],
    ['CIRCUIT_AGE', 'LOW', 0, null, false, ['RUNNING', 'PAUSED']],
  ];

  it.each(table)('%s: %s, on-delay %d s, deadband %s, latching %s', (id, priority, onDelayS, deadband, latching, states) => {
    const r = byId.get(id)!;
    expect(r).toBeDefined();
    expect(r).toMatchObject({ priority, onDelayS, latching, states });
    if (deadband !== null) expect((r as { deadband: number }).deadband).toBe(deadband);
  });

  it('has exactly the rules of the table and is frozen', () => {
    expect([...byId.keys()].sort()).toEqual(table.map((t) => t[0]).sort());
    expect(Object.isFrozen(defaultProfile.rules[0])).toBe(true);
  });

  it('multi-level and compound rules', () => {
    expect(byId.get('TMP_HIGH')).toMatchObject({ levels: [{ threshold: 100, priority: 'MEDIUM' }, { threshold: 150, priority: 'HIGH' }] });
    expect(byId.get('PUMP_STOPPED')).toMatchObject({ levels: [{ after: 60, priority: 'MEDIUM' }, { after: 300, priority: 'HIGH' }] });
    expect(byId.get('DPR_HIGH')).toMatchObject({ limit: 80, or: [{ kind: 'rise', limit: 30, windowS: 1800 }] });
    expect(byId.get('TR_CRITICAL')).toMatchObject({ kind: 'low', limit: 35, or: [{ kind: 'high', limit: 39 }] });
  });

  it('technical defaults: 3 s / 3 periods, 1 % over 60 s, 2 s skew, 120 s audio pause, 8 h shelving', () => {
    expect(defaultProfile.technical).toMatchObject({
      commLoss: { minSilenceS: 3, periods: 3, priority: 'HIGH' }, frameLoss: { percent: 1, windowS: 60 },
      clockSkew: { maxOffsetS: 2 }, audioPauseS: 120, maxShelveMinutes: 480, flood: { windowS: 600, threshold: 10 },
    });
  });
});

describe('profile validation: errors name the field path', () => {
  it.each([
    [{ devices: { 'MSC-0001': { PV_HIGH: { limit: 'high' } } } }, /^devices\.MSC-0001\.PV_HIGH\.limit: /],
    [{ defaults: [{ id: 'PV_LOW', onDelay: 3 }] }, /^defaults\.0\.onDelay: Unrecognized key/],
    [{ models: { 'MSC-ALS 2': { TMP_HIGH: { levels: [{ threshold: 150, priority: 'HIGH' }, { threshold: 100, priority: 'MEDIUM' }] } } } },
      /^models\.MSC-ALS 2\.TMP_HIGH\.levels\.1: levels must move away from normal/],
    [{ defaults: [{ id: 'NEW_RULE', kind: 'high', channel: 'PF', priority: 'LOW', message: 'PF high' }] }, /^defaults\.0\.limit: give exactly one of "limit" or "levels"/],
    [{ defaults: [{ id: 'X', kind: 'detector', channel: 'AIR', priority: 'URGENT', message: 'x' }] }, /^defaults\.0\.priority: /],
    [{ technical: { commLoss: { minSilenceS: -1 } } }, /^technical\.commLoss\.minSilenceS: /],
    [{ technical: { maxShelveMinutes: 600 } }, /^technical\.maxShelveMinutes: /],
    [{ devices: { D1: { PV_HIGH: { id: 'PV_LOW' } } } }, /^devices\.D1\.PV_HIGH\.id: must be "PV_HIGH"/],
    [{ rules: [] }, /^rules: Unrecognized key/],
  ])('%j', (input, pattern) => {
    expect(errors(input).some((e) => pattern.test(e))).toBe(true);
  });

  it('reads YAML and JSON files; a bad file throws ProfileError naming the file and paths', () => {
    const yamlFile = join(dir, 'profile.yaml');
    writeFileSync(yamlFile, 'devices:\n  MSC-0001:\n    PV_HIGH: { limit: 300 }\ntechnical:\n  commLoss: { minSilenceS: 5 }\n');
    const p = loadProfile(yamlFile);
    expect(resolveRules(p, 'MSC-0001', null).find((r) => r.id === 'PV_HIGH')).toMatchObject({ limit: 300, deadband: 10 });
    expect(p.technical.commLoss).toMatchObject({ minSilenceS: 5, periods: 3 });

    const jsonFile = join(dir, 'profile.json');
    writeFileSync(jsonFile, JSON.stringify({ defaults: [{ id: 'DO_LOW', limit: 'x' }] }));
    expect(() => loadProfile(jsonFile)).toThrow(ProfileError);
    expect(() => loadProfile(jsonFile)).toThrow(/profile\.json is invalid:\n {2}defaults\.0\.limit:/);
    expect(() => loadProfile(join(dir, 'missing.yaml'))).toThrow(ProfileError);
  });
});

describe('resolveRules: defaults, then the model, then the device', () => {
  const profile = ok({
    defaults: [{ id: 'PV_HIGH', limit: 260 }],
    models: { 'MSC-ALS 3': { PV_HIGH: { limit: 280 }, DO_LOW: { enabled: false } } },
    devices: {
      'MSC-0007': { PV_HIGH: { onDelayS: 1 }, PF_HIGH: { kind: 'high', channel: 'PF', limit: 400, priority: 'MEDIUM', message: 'PF high' } },
      'MSC-0008': { DPR_HIGH: { or: null } },
    },
  });
  const pv = (device: string, model: string | null) => resolveRules(profile, device, model).find((r) => r.id === 'PV_HIGH');

  it.each([
    ['MSC-0001', null, { limit: 260, onDelayS: 2 }],
    ['MSC-0001', 'MSC-ALS 3', { limit: 280, onDelayS: 2 }],
    ['MSC-0007', 'MSC-ALS 3', { limit: 280, onDelayS: 1 }],
    ['MSC-0007', 'MSC-ALS 2', { limit: 260, onDelayS: 1 }],
  ])('%s (model %s) → %j', (device, model, want) => {
    expect(pv(device, model)).toMatchObject(want);
  });

  it('a patch can disable a rule, add a rule, or remove a field', () => {
    expect(resolveRules(profile, 'X', 'MSC-ALS 3').some((r) => r.id === 'DO_LOW')).toBe(false);
    expect(resolveRules(profile, 'X', 'MSC-ALS 2').some((r) => r.id === 'DO_LOW')).toBe(true);
    expect(resolveRules(profile, 'MSC-0007', null).find((r) => r.id === 'PF_HIGH')).toMatchObject({ limit: 400, states: ['RUNNING'] });
    expect(resolveRules(profile, 'MSC-0008', null).find((r) => r.id === 'DPR_HIGH')!.or).toBeUndefined();
  });
});
