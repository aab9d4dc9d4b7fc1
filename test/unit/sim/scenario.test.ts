import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDuration } from '../../../device-sim/src/actions.js';
import type { SimAction } from '../../../device-sim/src/actions.js';
import { SimClock } from '../../../device-sim/src/clock.js';
import { SimulatedConsole } from '../../../device-sim/src/console.js';
import type { ConsoleFrame } from '../../../device-sim/src/console.js';
import { ScenarioRunner, loadScenarioFile, parseScenario } from '../../../device-sim/src/scenario.js';
import { EPOCH } from './harness.js';

const SCENARIOS = join(import.meta.dirname, '../../../device-sim/scenarios');

/** A link double that records the link-level actions it is asked to apply. */
function fakeLink() {
  const applied: Array<{ at: number; action: SimAction }> = [];
  return { applied, link: (c: SimulatedConsole) => ({ applyLinkAction: (a: SimAction) => applied.push({ at: c.simNow, action: a }) }) };
}

function consoles(n: number, clock: SimClock) {
  return Array.from({ length: n }, (_, i) => {
    const c = new SimulatedConsole({ deviceId: `MSC-000${i + 1}`, clock, seed: i + 1, startEpochMs: EPOCH, autoRun: true });
    const frames: ConsoleFrame[] = [];
    c.onFrame((f) => frames.push(f));
    return { c, frames };
  });
}

describe('durations', () => {
  it('reads ms, s, m, h and combinations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('90')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
  });
});

describe('scenario schema', () => {
  it('accepts a valid scenario, fills param defaults and sorts events by time', () => {
    const s = parseScenario({
      name: 'x',
      events: [
        { at: '2m', action: 'venous_kink', duration: '30s' },
        { at: 5000, action: 'sensor_fault', params: { channel: 'PV' }, device: 'MSC-0001' },
      ],
    });
    expect(s.events.map((e) => e.atMs)).toEqual([5000, 120_000]);
    expect(s.events[1]).toEqual({ action: 'venous_kink', atMs: 120_000, durationMs: 30_000, params: { severity: 5 } });
    expect(s.events[0]).toMatchObject({ device: 'MSC-0001', params: { channel: 'PV', mode: 'fault' } });
  });

  it('names the field path of every error', () => {
    const bad = {
      name: 'bad',
      events: [
        { at: '10s', action: 'venous_kink' },
        { at: '10s', action: 'sensor_fault', params: { channel: 'XYZ' } },
        { action: 'air_in_line' },
        { at: 'soon', action: 'blood_leak' },
        { at: '1s', action: 'explode' },
        { at: '1s', action: 'garbage_bytes', params: { count: 0 } },
      ],
    };
    let message = '';
    try {
      parseScenario(bad, 'bad.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^bad\.yaml: /);
    expect(message).toContain('events[1].params.channel');
    expect(message).toContain('events[2].at: required');
    expect(message).toContain('events[3].at: "soon" is not a duration');
    expect(message).toContain('events[4].action');
    expect(message).toContain('events[5].params.count');
    expect(message).not.toContain('events[0]');
  });

  it('rejects unknown keys (a typo must not pass silently)', () => {
    expect(() => parseScenario({ name: 'x', events: [{ at: 1, action: 'blood_leak', durration: '5s' }] })).toThrow(/durration|Unrecognized/);
  });
});

describe('scenario files', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('loads YAML and JSON, and reports the file in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-scn-'));
    dirs.push(dir);
    await writeFile(join(dir, 'a.json'), JSON.stringify({ name: 'j', events: [{ at: '1s', action: 'power_cycle' }] }));
    expect((await loadScenarioFile(join(dir, 'a.json'))).events[0].atMs).toBe(1000);
    await writeFile(join(dir, 'b.yaml'), 'name: y\nevents:\n  - at: 1s\n    action: set_rate\n');
    await expect(loadScenarioFile(join(dir, 'b.yaml'))).rejects.toThrow(/b\.yaml: events\[0\]\.params/);
    await writeFile(join(dir, 'c.yaml'), 'name: [unclosed');
    await expect(loadScenarioFile(join(dir, 'c.yaml'))).rejects.toThrow(/c\.yaml: not valid YAML/);
  });

  it('ships ready scenarios that all load, have a description and cover every fault of the issue', async () => {
    const files = (await readdir(SCENARIOS)).filter((f) => f.endsWith('.yaml'));
    const actions = new Set<string>();
    for (const f of files) {
      const s = await loadScenarioFile(join(SCENARIOS, f));
      expect(s.description, f).toBeTruthy();
      expect(s.name, f).toBe(f.replace(/\.yaml$/, ''));
      for (const e of s.events) actions.add(e.action);
    }
    for (const a of ['venous_kink', 'access_collapse', 'return_disconnect', 'air_in_line', 'blood_leak', 'heater_failure',
      'reactor_clotting', 'sensor_fault', 'link_drop', 'garbage_bytes', 'bad_crc', 'clock_skew', 'unanswered_command']) {
      expect(actions, a).toContain(a);
    }
  });
});

describe('ScenarioRunner', () => {
  it('applies each event at its simulated time, to the addressed console, links actions to the link', async () => {
    const clock = new SimClock();
    const cs = consoles(2, clock);
    const links = fakeLink();
    const scenario = parseScenario({
      name: 't',
      events: [
        { at: '30s', action: 'air_in_line', device: 1 },
        { at: '20s', action: 'link_drop', duration: '5s', device: 'MSC-0001' },
      ],
    });
    const runner = new ScenarioRunner(scenario, cs.map(({ c }) => ({ console: c, link: links.link(c) })));
    for (const { c } of cs) c.start();
    runner.start();
    for (let i = 0; i < 40; i++) clock.advance(1000);
    expect(links.applied).toEqual([{ at: 20_000, action: expect.objectContaining({ action: 'link_drop', durationMs: 5000 }) }]);
    expect(cs[0].c.state).toBe('RUNNING');
    expect(cs[1].c.state).toBe('PAUSED');
    const ev = cs[1].frames.find((f) => f.type === 'EV');
    expect(ev).toMatchObject({ code: 'AIR_DETECTED', t: EPOCH + 30_000 });
    expect(runner.applied).toBe(2);
    runner.stop();
  });

  it('refuses an event for a console that is not simulated', () => {
    const clock = new SimClock();
    const cs = consoles(1, clock);
    const links = fakeLink();
    const runner = new ScenarioRunner(
      parseScenario({ name: 't', events: [{ at: 1, action: 'blood_leak', device: 'MSC-0009' }] }),
      cs.map(({ c }) => ({ console: c, link: links.link(c) })),
    );
    expect(() => runner.start()).toThrow(/MSC-0009.*not simulated/);
  });

  it('runs every shipped scenario to its end: every event applied, telemetry flowing', async () => {
    const files = (await readdir(SCENARIOS)).filter((f) => f.endsWith('.yaml'));
    for (const f of files) {
      const s = await loadScenarioFile(join(SCENARIOS, f));
      const clock = new SimClock();
      const n = typeof s.devices === 'number' ? s.devices : 1;
      const cs = consoles(n, clock);
      const links = fakeLink();
      const runner = new ScenarioRunner(s, cs.map(({ c }) => ({ console: c, link: links.link(c) })));
      for (const { c } of cs) c.start();
      runner.start();
      const end = Math.max(...s.events.map((e) => e.atMs + (e.durationMs ?? 0))) + 10_000;
      for (let t = 0; t < end; t += 1000) clock.advance(1000);
      expect(runner.applied, f).toBe(s.events.reduce((k, e) => k + (e.device === undefined ? n : 1), 0));
      for (const { frames } of cs) expect(frames.filter((x) => x.type === 'T').length, f).toBeGreaterThan(end / 100 - 200);
    }
  });
});
