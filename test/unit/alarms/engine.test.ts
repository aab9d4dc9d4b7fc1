import { describe, expect, it } from 'vitest';
import { defaultProfile, parseProfile } from '../../../src/alarms/rules.js';
import { ENGINEER, NURSE, OK, harness } from './engineHarness.js';

describe('ISA-18.2 state model', () => {
  it('NORMAL → UNACK → ACKED → NORMAL, each transition with who, when and why', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(10_000, { ...OK, QB: 120 });
    expect(h.get('D1:QB_DEVIATION')).toMatchObject({ state: 'UNACK', priority: 'MEDIUM', active: true, source: 'process', value: 30, limit: 15 });
    const ack = h.engine.ack('D1:QB_DEVIATION', NURSE, 'flow checked');
    expect(ack).toMatchObject({ ok: true, alarm: { state: 'ACKED', ackedBy: 'nurse1', ackedAt: h.clock.now() } });
    h.frame(OK);
    expect(h.get('D1:QB_DEVIATION')).toMatchObject({ state: 'NORMAL', active: false, clearedAt: h.clock.now() });
    expect(h.kinds('D1:QB_DEVIATION')).toEqual(['raise:UNACK', 'ack:ACKED', 'clear:NORMAL']);
    const ackT = h.transitions.find((t) => t.kind === 'ack')!;
    expect(ackT).toMatchObject({ from: 'UNACK', to: 'ACKED', actor: NURSE, reason: 'flow checked', at: h.clock.now() });
  });

  it('a non-latching alarm that clears unacknowledged returns to NORMAL', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(10_000, { ...OK, QB: 120 });
    h.frame(OK);
    expect(h.kinds('D1:QB_DEVIATION')).toEqual(['raise:UNACK', 'clear:NORMAL']);
  });

  it('a latching alarm that clears unacknowledged stays RTN_UNACK until acknowledged', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.frame({ ...OK, AIR: 1 });
    h.frame(OK);
    expect(h.get('D1:AIR_IN_LINE')).toMatchObject({ state: 'RTN_UNACK', active: false, latching: true });
    expect(h.engine.list({ state: 'active' }).map((a) => a.id)).toContain('D1:AIR_IN_LINE');
    expect(h.engine.ack('D1:AIR_IN_LINE', NURSE)).toMatchObject({ ok: true, alarm: { state: 'NORMAL' } });
    expect(h.kinds('D1:AIR_IN_LINE')).toEqual(['raise:UNACK', 'clear:RTN_UNACK', 'ack:NORMAL']);
  });

  it('a re-triggered latched alarm returns to UNACK', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.frame({ ...OK, AIR: 1 });
    h.frame(OK);
    h.frame({ ...OK, AIR: 1 });
    expect(h.kinds('D1:AIR_IN_LINE')).toEqual(['raise:UNACK', 'clear:RTN_UNACK', 'raise:UNACK']);
  });

  it('escalation: an unacknowledged alarm rises one priority after N s, and no further than HIGH', () => {
    const p = parseProfile({ defaults: [{ id: 'DO_LOW', escalateAfterS: 30 }] });
    if (!p.ok) throw new Error(p.errors.join());
    const h = harness({ profile: p.profile }).start();
    h.state('RUNNING');
    h.advance(60_000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')).toMatchObject({ state: 'UNACK', priority: 'LOW' });
    h.advance(30_000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')).toMatchObject({ state: 'UNACK', priority: 'MEDIUM' });
    h.advance(30_000, { ...OK, DO: 30 });
    h.advance(60_000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')).toMatchObject({ state: 'UNACK', priority: 'HIGH' });
    expect(h.kinds('D1:DO_LOW')).toEqual(['raise:UNACK', 'escalate:UNACK', 'escalate:UNACK']);
  });

  it('an acknowledged alarm does not escalate by time, but a worse level returns it to UNACK', () => {
    const p = parseProfile({ defaults: [{ id: 'TMP_HIGH', escalateAfterS: 10 }] });
    if (!p.ok) throw new Error(p.errors.join());
    const h = harness({ profile: p.profile }).start();
    h.state('RUNNING');
    h.advance(5000, { ...OK, TMP: 120 });
    h.engine.ack('D1:TMP_HIGH', NURSE);
    h.advance(20_000, { ...OK, TMP: 120 });
    expect(h.get('D1:TMP_HIGH')).toMatchObject({ state: 'ACKED', priority: 'MEDIUM' });
    h.advance(5000, { ...OK, TMP: 160 });
    expect(h.get('D1:TMP_HIGH')).toMatchObject({ state: 'UNACK', priority: 'HIGH', ackedBy: null });
    // Never downgraded while active: back to the MEDIUM band keeps HIGH.
    h.advance(2000, { ...OK, TMP: 120 });
    expect(h.get('D1:TMP_HIGH')).toMatchObject({ priority: 'HIGH', active: true });
  });

  it('re-annunciation: acknowledged and still present after 5 min returns to UNACK', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(2000, { ...OK, PV: 300 });
    h.engine.ack('D1:PV_HIGH', NURSE);
    h.advance(299_000, { ...OK, PV: 300 });
    expect(h.get('D1:PV_HIGH')!.state).toBe('ACKED');
    h.advance(1000, { ...OK, PV: 300 });
    expect(h.kinds('D1:PV_HIGH')).toEqual(['raise:UNACK', 'ack:ACKED', 'reannunciate:UNACK']);
  });

  it('typed errors: unknown alarm, invalid transition', () => {
    const h = harness().start();
    expect(h.engine.ack('D1:NOPE', NURSE)).toMatchObject({ ok: false, error: 'not_found' });
    h.state('RUNNING');
    h.frame({ ...OK, AIR: 1 });
    h.engine.ack('D1:AIR_IN_LINE', NURSE);
    expect(h.engine.ack('D1:AIR_IN_LINE', NURSE)).toMatchObject({ ok: false, error: 'invalid_transition' });
    expect(h.engine.unshelve('D1:AIR_IN_LINE', NURSE)).toMatchObject({ ok: false, error: 'invalid_transition' });
    expect(h.engine.returnToService('D1:AIR_IN_LINE', ENGINEER)).toMatchObject({ ok: false, error: 'invalid_transition' });
  });
});

describe('shelving, out of service, suppression by state', () => {
  it('shelving needs a reason and at most 8 h, hides the alarm, and expires by itself', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(60_000, { ...OK, DO: 30 });
    expect(h.engine.shelve('D1:DO_LOW', 30, '  ', NURSE)).toMatchObject({ ok: false, error: 'invalid_argument' });
    expect(h.engine.shelve('D1:DO_LOW', 481, 'sensor drift', NURSE)).toMatchObject({ ok: false, error: 'invalid_argument' });
    const r = h.engine.shelve('D1:DO_LOW', 30, 'sensor drift', NURSE);
    expect(r).toMatchObject({ ok: true, alarm: { state: 'SHELVED', shelvedUntil: h.clock.now() + 30 * 60_000, shelveReason: 'sensor drift', shelvedBy: 'nurse1' } });
    h.advance(1000, { ...OK, DO: 80 });
    h.advance(1000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')!.state).toBe('SHELVED');
    h.advance(30 * 60_000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')).toMatchObject({ state: 'UNACK', shelvedUntil: null });
    const expiry = h.transitions.find((t) => t.kind === 'unshelve')!;
    expect(expiry).toMatchObject({ from: 'SHELVED', to: 'UNACK', actor: null, reason: 'shelf expired' });
  });

  it('an unshelved alarm whose condition is gone returns to NORMAL', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(60_000, { ...OK, DO: 30 });
    h.engine.shelve('D1:DO_LOW', 10, 'known', NURSE);
    h.advance(3000, { ...OK, DO: 80 });
    expect(h.engine.unshelve('D1:DO_LOW', NURSE)).toMatchObject({ ok: true, alarm: { state: 'NORMAL' } });
  });

  it('out of service: reason required, hidden while active, returns to UNACK if still present', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(60_000, { ...OK, DO: 30 });
    expect(h.engine.outOfService('D1:DO_LOW', '', ENGINEER)).toMatchObject({ ok: false, error: 'invalid_argument' });
    expect(h.engine.outOfService('D1:DO_LOW', 'DO probe replaced', ENGINEER))
      .toMatchObject({ ok: true, alarm: { state: 'OUT_OF_SERVICE', outOfServiceBy: 'eng1' } });
    h.advance(5000, { ...OK, DO: 30 });
    expect(h.get('D1:DO_LOW')!.state).toBe('OUT_OF_SERVICE');
    expect(h.engine.returnToService('D1:DO_LOW', ENGINEER)).toMatchObject({ ok: true, alarm: { state: 'UNACK' } });
  });

  it('a non-latching alarm is SUPPRESSED when the state leaves its rule, and re-evaluated on return', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(10_000, { ...OK, QB: 120 });
    h.engine.ack('D1:QB_DEVIATION', NURSE);
    h.state('PAUSED');
    expect(h.get('D1:QB_DEVIATION')).toMatchObject({ state: 'SUPPRESSED', active: false });
    h.advance(5000, { ...OK, QB: 0 });
    expect(h.get('D1:QB_DEVIATION')!.state).toBe('SUPPRESSED');
    h.state('RUNNING');
    expect(h.get('D1:QB_DEVIATION')!.state).toBe('NORMAL');
    h.advance(10_000, { ...OK, QB: 120 });
    expect(h.kinds('D1:QB_DEVIATION')).toEqual(['raise:UNACK', 'ack:ACKED', 'suppress:SUPPRESSED', 'unsuppress:NORMAL', 'raise:UNACK']);
  });

  it('a latched unacknowledged alarm stays visible (RTN_UNACK) when its rule is suppressed by state', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(2000, { ...OK, PV: 300 });
    h.state('PAUSED');
    expect(h.get('D1:PV_HIGH')).toMatchObject({ state: 'RTN_UNACK', active: false });
  });

  it('PV low during PRIMING is suppressed by design: no alarm', () => {
    const h = harness().start();
    h.state('PRIMING');
    h.advance(30_000, { ...OK, PV: 0, QB: 0 });
    expect(h.engine.list()).toEqual([]);
  });
});

describe('audio pause', () => {
  it('lasts 120 s per device; a new alarm of equal priority does not break through, a higher one does', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(10_000, { ...OK, QB: 120 });
    const r = h.engine.audioPause('D1', NURSE);
    expect(r).toMatchObject({ ok: true, until: h.clock.now() + 120_000 });
    expect(h.audio).toEqual([{ deviceId: 'D1', until: h.clock.now() + 120_000, actor: NURSE }]);
    h.advance(10_000, { ...OK, QB: 120, QP: 50 });
    expect(h.get('D1:PLASMA_FRACTION')!.state).toBe('UNACK');
    expect(h.audio).toHaveLength(1);
    h.frame({ ...OK, QB: 120, QP: 50, AIR: 1 });
    expect(h.audio.at(-1)).toEqual({ deviceId: 'D1', until: null, actor: null });
    expect(h.engine.audioPauseOf('D1')).toBeNull();
  });

  it('expires by itself', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.frame({ ...OK, AIR: 1 });
    h.engine.audioPause('D1', NURSE);
    h.advance(119_000, OK);
    expect(h.engine.audioPauseOf('D1')).not.toBeNull();
    h.advance(1000, OK);
    expect(h.engine.audioPauseOf('D1')).toBeNull();
    expect(h.audio.at(-1)).toMatchObject({ deviceId: 'D1', until: null });
  });

  it('an unknown device is not found', () => {
    const h = harness().start();
    expect(h.engine.audioPause('NOPE', NURSE)).toMatchObject({ ok: false, error: 'not_found' });
  });
});

describe('lifecycle', () => {
  it('stop() is safe twice and unsubscribes from the bus', () => {
    const h = harness().start();
    h.engine.stop();
    h.engine.stop();
    h.frame({ ...OK, AIR: 1 });
    expect(h.engine.list()).toEqual([]);
  });

  it('uses the default profile by default', () => {
    const h = harness();
    expect(defaultProfile.rules.map((r) => r.id)).toContain('AIR_IN_LINE');
    h.start();
    h.state('RUNNING');
    h.frame({ ...OK, BLD: 1 });
    expect(h.get('D1:BLOOD_LEAK')).toMatchObject({ priority: 'HIGH', latching: true });
  });
});

describe('rules per device model', () => {
  it('the model from HELLO selects its patches; a new model re-evaluates from scratch', () => {
    const p = parseProfile({ models: { 'MSC-ALS 3': { PV_HIGH: { limit: 300 } } } });
    if (!p.ok) throw new Error(p.errors.join());
    const h = harness({ profile: p.profile }).start();
    const hello = (model: string) => h.bus.emit('hello', {
      deviceId: 'D1', transport: 'serial', source: '/dev/x',
      hello: { type: 'HELLO', deviceId: 'D1', model, fw: '4.0.0', icd: 1, serialNo: 'SN1' },
    });
    hello('MSC-ALS 3');
    h.state('RUNNING');
    h.advance(5000, { ...OK, PV: 280 });
    expect(h.get('D1:PV_HIGH')).toBeUndefined();
    hello('MSC-ALS 2');
    h.advance(3000, { ...OK, PV: 280 });
    expect(h.get('D1:PV_HIGH')).toMatchObject({ state: 'UNACK', limit: 250 });
  });
});

describe('profile updates', () => {
  it('an alarm whose rule is removed clears (a latched one waits for acknowledgement)', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.advance(60_000, { ...OK, DO: 30, PV: 300 });
    expect(h.get('D1:DO_LOW')!.state).toBe('UNACK');
    expect(h.get('D1:PV_HIGH')!.state).toBe('UNACK');
    const p = parseProfile({ defaults: [{ id: 'DO_LOW', enabled: false }, { id: 'PV_HIGH', enabled: false }] });
    if (!p.ok) throw new Error(p.errors.join());
    h.engine.updateProfile(p.profile);
    expect(h.get('D1:DO_LOW')).toMatchObject({ state: 'NORMAL', active: false });
    expect(h.get('D1:PV_HIGH')).toMatchObject({ state: 'RTN_UNACK', active: false });
    h.advance(60_000, { ...OK, DO: 30, PV: 300 });
    expect(h.get('D1:DO_LOW')!.state).toBe('NORMAL');
  });
});

