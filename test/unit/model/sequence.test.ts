import { describe, expect, it } from 'vitest';
import { SEQ_SLACK, SequenceTracker, plausibleAhead } from '../../../src/model/sequence.js';

describe('SequenceTracker (ICD §1: lost = (seq − last − 1) mod 2^32)', () => {
  it('counts nothing for consecutive frames', () => {
    const s = new SequenceTracker();
    for (let i = 10; i < 20; i++) s.accept(i, 0);
    expect([s.gaps, s.framesLost, s.duplicates]).toEqual([0, 0, 0]);
  });

  it('counts a gap and the frames lost', () => {
    const s = new SequenceTracker();
    s.accept(1, 0);
    expect(s.accept(5, 0)).toBe('gap');
    expect([s.gaps, s.framesLost]).toEqual([1, 3]);
  });

  it('wraps from 4294967295 to 0 without a gap', () => {
    const s = new SequenceTracker();
    s.accept(4294967294, 0);
    s.accept(4294967295, 0);
    expect(s.accept(0, 0)).toBe('new');
    expect(s.framesLost).toBe(0);
    expect(s.accept(3, 0)).toBe('gap');
    expect(s.framesLost).toBe(2);
  });

  it('counts a gap across the wrap by the formula', () => {
    const s = new SequenceTracker();
    s.accept(4294967290, 0);
    s.accept(2, 0);
    expect(s.framesLost).toBe(7); // 4294967291..4294967295, 0, 1
  });

  it('drops a duplicate (MQTT redelivery) without touching the loss count', () => {
    const s = new SequenceTracker();
    s.accept(1, 0);
    s.accept(2, 0);
    expect(s.accept(2, 0)).toBe('duplicate');
    expect(s.accept(1, 0)).toBe('duplicate');
    expect([s.duplicates, s.framesLost]).toEqual([2, 0]);
  });

  it('keeps a late frame and takes it back out of the loss count', () => {
    const s = new SequenceTracker();
    s.accept(1, 0);
    s.accept(4, 0); // 2, 3 missing
    expect(s.framesLost).toBe(2);
    expect(s.accept(2, 0)).toBe('late');
    expect(s.framesLost).toBe(1);
    expect(s.accept(2, 0)).toBe('duplicate');
  });

  it('treats a backwards seq after HELLO as a power-up restart', () => {
    const s = new SequenceTracker();
    s.accept(500, 0);
    s.onHello();
    expect(s.accept(0, 0)).toBe('restart');
    expect(s.accept(1, 0)).toBe('new');
    expect([s.framesLost, s.duplicates]).toEqual([0, 0]);
  });

  it('counts frames lost while the gateway was down from the remembered seq', () => {
    const s = new SequenceTracker({ seq: 100, rx: 0 });
    expect(s.accept(111, 0)).toBe('gap');
    expect(s.framesLost).toBe(10);
  });

  it('counts a jump no console could make apart, and keeps the baseline when the old count goes on', () => {
    const s = new SequenceTracker();
    s.accept(1000, 0);
    s.accept(1001, 100);
    expect(s.accept(2_000_000_000, 200)).toBe('implausible');
    expect([s.gaps, s.framesLost, s.implausible]).toEqual([0, 0, 1]);
    expect(s.accept(1002, 300)).toBe('new');
    expect(s.accept(1004, 400)).toBe('gap');
    expect([s.gaps, s.framesLost, s.implausible, s.lastSeq]).toEqual([1, 1, 1, 1004]);
    expect(s.accept(2_000_000_000, 500)).toBe('duplicate'); // a redelivery of the suspect frame
  });

  it('adopts the jump when the next frame continues from it (a restart without HELLO, a wrong journal memory)', () => {
    const s = new SequenceTracker({ seq: 5_000_000, rx: 0 });
    expect(s.accept(0, 1000)).toBe('implausible'); // far behind, beyond what the late-frame ring can tell
    expect(s.accept(1, 1100)).toBe('new');
    expect(s.accept(3, 1200)).toBe('gap');
    expect([s.framesLost, s.implausible, s.lastSeq]).toEqual([1, 1, 3]);
  });

  it('allows twice the fastest console (100 Hz) plus slack since the last frame, gateway time', () => {
    expect(plausibleAhead(0)).toBe(SEQ_SLACK);
    expect(plausibleAhead(60_000)).toBe(12_000 + SEQ_SLACK);
    const s = new SequenceTracker();
    s.accept(10, 0);
    expect(s.accept(10 + 1 + 12_000 + SEQ_SLACK - 1, 60_000)).toBe('gap'); // the most a minute can hold
    const t = new SequenceTracker();
    t.accept(10, 0);
    expect(t.accept(10 + 1 + 12_000 + SEQ_SLACK, 60_000)).toBe('implausible');
  });

  it('measures a remembered seq from the time the journal received it', () => {
    const s = new SequenceTracker({ seq: 100, rx: 0 });
    expect(s.accept(100 + 1 + 500_000, 3_600_000)).toBe('gap'); // an hour away: 500,000 lost is possible
    expect(s.framesLost).toBe(500_000);
  });
});
