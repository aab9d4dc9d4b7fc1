import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AlarmProfileStore } from '../../../src/alarms/profileStore.js';
import { defaultProfile, parseProfile, type AlarmProfile } from '../../../src/alarms/rules.js';
import { createLogger } from '../../../src/log.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'msc-profile-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function capture() {
  const lines: Array<{ level: number; msg: string; problem?: string }> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: createLogger('info', stream), lines, errors: () => lines.filter((l) => l.level >= 50) };
}

function store(dataDir: string, base: AlarmProfile = defaultProfile, log = capture()) {
  return { store: new AlarmProfileStore({ dataDir, base, logger: log.logger, now: () => 1_700_000_000_000 }), log };
}

/** The rule's fields for a device: the profile's rule with the device's patch on top. */
const rule = (p: AlarmProfile, device: string, id: string): Record<string, unknown> => {
  const patch = p.devices[device]?.[id] as Record<string, unknown> | undefined;
  return { ...p.rules.find((r) => r.id === id), ...patch };
};

const CHANGE = { devices: { 'MSC-0001': { PV_HIGH: { limit: 240 } } } };

describe('AlarmProfileStore', () => {
  it('without a file runs the configured profile and an empty document', () => {
    const { store: s, log } = store(tempDir());
    expect(s.load()).toBe(defaultProfile);
    expect(s.current()).toEqual({});
    expect(s.loadProblem).toBeNull();
    expect(log.errors()).toHaveLength(0);
  });

  it('a saved document is applied on top of the configured profile by the next load', () => {
    const dir = tempDir();
    const configured = parseProfile({ defaults: [{ id: 'PV_LOW', limit: 30 }] });
    if (!configured.ok) throw new Error(configured.errors.join());
    const a = store(dir, configured.profile).store;
    a.load();
    a.save(CHANGE, { changedBy: 'eng', reason: 'new cannula' });
    expect(a.current()).toEqual(CHANGE);

    const stored = JSON.parse(readFileSync(join(dir, 'alarm-profile.json'), 'utf8'));
    expect(stored).toMatchObject({ format: 1, changedBy: 'eng', reason: 'new cannula', changedAt: 1_700_000_000_000, profile: CHANGE });

    const b = store(dir, configured.profile).store;
    const p = b.load();
    expect(rule(p, 'MSC-0001', 'PV_HIGH').limit).toBe(240);
    expect(rule(p, 'MSC-0002', 'PV_HIGH').limit).toBe(250);
    expect(p.rules.find((r) => r.id === 'PV_LOW')).toMatchObject({ limit: 30 }); // the configured profile stays under it
    expect(b.current()).toEqual(CHANGE);
  });

  it('writes atomically: a failed write leaves the previous file and document in force, and throws', () => {
    const dir = tempDir();
    const { store: s } = store(dir);
    s.load();
    s.save(CHANGE, { changedBy: 'eng', reason: 'first' });
    const before = readFileSync(join(dir, 'alarm-profile.json'), 'utf8');
    // The temporary file's name taken by a directory: the write fails before the rename.
    mkdirSync(join(dir, `alarm-profile.json.${process.pid}.tmp`));
    const second = { devices: { 'MSC-0001': { PV_HIGH: { limit: 230 } } } };
    expect(() => s.save(second, { changedBy: 'eng', reason: 'second' })).toThrow();
    expect(readFileSync(join(dir, 'alarm-profile.json'), 'utf8')).toBe(before);
    expect(s.current()).toEqual(CHANGE);
    rmSync(join(dir, `alarm-profile.json.${process.pid}.tmp`), { recursive: true });

    s.save(second, { changedBy: 'eng', reason: 'second' });
    expect(readdirSync(dir)).toEqual(['alarm-profile.json']); // no temporary file left behind
    expect(rule(store(dir).store.load(), 'MSC-0001', 'PV_HIGH').limit).toBe(230);
  });

  it.each([
    ['not JSON', '{"format":1,"profile":{"devices":', /is not JSON/],
    ['an unexpected shape', JSON.stringify({ devices: {} }), /unexpected shape: format/],
    ['an invalid profile', JSON.stringify({ format: 1, profile: { devices: { D1: { PV_HIGH: { limit: 'high' } } } } }),
      /profile\.devices\.D1\.PV_HIGH\.limit: Invalid input/],
  ])('a file that is %s: configured profile, error logged, file moved aside, next save works', (_what, text, problem) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'alarm-profile.json'), text);
    const { store: s, log } = store(dir);
    expect(s.load()).toBe(defaultProfile);
    expect(s.current()).toEqual({});
    expect(s.loadProblem).toMatch(problem);
    expect(log.errors()).toHaveLength(1);
    expect(log.errors()[0].problem).toMatch(problem);
    expect(log.errors()[0].msg).toMatch(/NOT applied/);
    const aside = readdirSync(dir).filter((f) => f.startsWith('alarm-profile.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]), 'utf8')).toBe(text); // kept for inspection

    s.save(CHANGE, { changedBy: 'eng', reason: 'again' });
    expect(rule(store(dir).store.load(), 'MSC-0001', 'PV_HIGH').limit).toBe(240);
  });

  it('an unreadable file is reported and left where it is', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'alarm-profile.json'));
    const { store: s, log } = store(dir);
    expect(s.load()).toBe(defaultProfile);
    expect(s.loadProblem).toMatch(/cannot read/);
    expect(log.errors()).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(['alarm-profile.json']);
  });

  it('an unusable file is a problem reported to the listener until a new profile is saved (the fix), also after a restart', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'alarm-profile.json'), 'not json');
    const { store: s } = store(dir);
    s.load();
    const seen: Array<string | null> = [];
    s.onProblem((p) => seen.push(p));
    expect(seen).toEqual([expect.stringMatching(/is not JSON.*configured profile runs until an engineer confirms/)]);
    // A restart before anyone acted: the set-aside file still stands for the problem.
    const { store: again } = store(dir);
    again.load();
    expect(again.loadProblem).toMatch(/set aside as unusable \(alarm-profile\.json\.corrupt-1700000000000\)/);
    const later: Array<string | null> = [];
    again.onProblem((p) => later.push(p));
    again.save(CHANGE, { changedBy: 'eng', reason: 'new limits' });
    expect(later).toEqual([expect.any(String), null]);
    expect(again.loadProblem).toBeNull();
    expect(readdirSync(dir).sort()).toEqual(['alarm-profile.json', 'alarm-profile.json.corrupt-1700000000000.confirmed']);
    const { store: third } = store(dir);
    third.load();
    expect(third.loadProblem).toBeNull();
  });
});
