import { describe, expect, it } from 'vitest';
import { SequenceTracker } from '../../../src/model/sequence.js';

describe('SequenceTracker (ICD §1: lost = (seq − last − 1) mod 2^32)', () => {
  it('counts nothing for consecutive frames', () => {
    const s = new SequenceTracker();
    for (let i = 10; i < 20; i++) s.accept(i);
    expect([s.gaps, s.framesLost, s.duplicates]).toEqual([0, 0, 0]);
  });

  it('counts a gap and the frames lost', () => {
    const s = new SequenceTracker();
    s.accept(1);
    expect(s.accept(5)).toBe('gap');
    expect([s.gaps, s.framesLost]).toEqual([1, 3]);
  });

  it('wraps from 4294967295 to 0 without a gap', () => {
    const s = new SequenceTracker();
    s.accept(4294967294);
    s.accept(4294967295);
    expect(s.accept(0)).toBe('new');
    expect(s.framesLost).toBe(0);
    expect(s.accept(3)).toBe('gap');
    expect(s.framesLost).toBe(2);
  });

  it('counts a gap across the wrap by the formula', () => {
    const s = new SequenceTracker();
    s.accept(4294967290);
    s.accept(2);
    expect(s.framesLost).toBe(7); // 4294967291..4294967295, 0, 1
  });

  it('drops a duplicate (MQTT redelivery) without touching the loss count', () => {
    const s = new SequenceTracker();
    s.accept(1);
    s.accept(2);
    expect(s.accept(2)).toBe('duplicate');
    expect(s.accept(1)).toBe('duplicate');
    expect([s.duplicates, s.framesLost]).toEqual([2, 0]);
  });

  it('keeps a late frame and takes it back out of the loss count', () => {
    const s = new SequenceTracker();
    s.accept(1);
    s.accept(4); // 2, 3 missing
    expect(s.framesLost).toBe(2);
    expect(s.accept(2)).toBe('late');
    expect(s.framesLost).toBe(1);
    expect(s.accept(2)).toBe('duplicate');
  });

  it('treats a backwards seq after HELLO as a power-up restart', () => {
    const s = new SequenceTracker();
    s.accept(500);
    s.onHello();
    expect(s.accept(0)).toBe('restart');
    expect(s.accept(1)).toBe('new');
    expect([s.framesLost, s.duplicates]).toEqual([0, 0]);
  });

  it('counts frames lost while the gateway was down from the remembered seq', () => {
    const s = new SequenceTracker(100);
    expect(s.accept(111)).toBe('gap');
    expect(s.framesLost).toBe(10);
  });
});
