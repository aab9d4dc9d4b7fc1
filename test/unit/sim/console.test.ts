import { describe, expect, it } from 'vitest';
import { EPOCH, harness } from './harness.js';

describe('SimulatedConsole power-up and framing', () => {
  it('says HELLO first, then S IDLE with seq 0, then telemetry at 10 Hz on its own clock', () => {
    const h = harness();
    expect(h.frames[0]).toEqual({ type: 'HELLO', deviceId: 'MSC-0001', model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN-MSC-0001' });
    expect(h.frames[1]).toEqual({ type: 'S', seq: 0, t: EPOCH, state: 'IDLE', sessionId: null });
    h.advance(1000);
    const t = h.telemetry();
    expect(t.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(t.map((f) => f.t)).toEqual(Array.from({ length: 10 }, (_, i) => EPOCH + 100 * (i + 1)));
    for (const k of ['SQB', 'SQP', 'STR', 'SHEP']) expect(t[0].v[k]).toBeTypeOf('number');
    expect(t[0].v.QB).toBe(0); // IDLE: pumps stopped
  });

  it('sends S as a keep-alive every 5 s and on every change, all on one seq counter', () => {
    const h = harness();
    h.advance(12_000);
    const s = h.states();
    expect(s.map((f) => f.t - EPOCH)).toEqual([0, 5000, 10_000]);
    const seqs = h.frames.filter((f) => f.type !== 'HELLO' && f.type !== 'ACK').map((f) => (f as { seq: number }).seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  });

  it('wraps seq from 4294967295 to 0', () => {
    const h = harness({ seqStart: 4294967294 });
    h.advance(300);
    const seqs = h.frames.slice(1).map((f) => (f as { seq: number }).seq);
    expect(seqs).toEqual([4294967294, 4294967295, 0, 1]);
  });

  it('restarts seq at 0 with a HELLO first after a power cycle, IDLE and default setpoints', () => {
    const h = harness({ autoRun: true });
    h.advance(15_000);
    h.send('a1', 'SET', 'QB', 180);
    expect(h.console.state).toBe('RUNNING');
    const mark = h.frames.length;
    h.act({ action: 'power_cycle', duration: '3s' });
    h.advance(2000);
    expect(h.since(mark)).toEqual([]); // off: silent
    h.advance(2000);
    const after = h.since(mark);
    expect(after[0].type).toBe('HELLO');
    expect(after[1]).toMatchObject({ type: 'S', seq: 0, state: 'IDLE', sessionId: null });
    expect(h.console.setpoints.QB).toBe(150);
  });
});

describe('SimulatedConsole session state machine', () => {
  it('walks IDLE → SELFTEST → PRIMING → PRIMED → RUNNING ⇄ PAUSED → RINSEBACK → ENDED → IDLE', () => {
    const h = harness({ phases: { selftestMs: 2000, primingMs: 8000, rinsebackMs: 10_000 } });
    h.send('c1', 'PRIME');
    expect(h.frames.at(-2)).toEqual({ type: 'ACK', cmdId: 'c1', result: 'OK', detail: '' });
    expect(h.frames.at(-1)).toMatchObject({ type: 'S', state: 'SELFTEST' });
    h.advance(2000);
    expect(h.console.state).toBe('PRIMING');
    h.advance(8000);
    expect(h.console.state).toBe('PRIMED');
    h.send('c2', 'START', 'S-20261125-01');
    expect(h.frames.at(-1)).toMatchObject({ type: 'S', state: 'RUNNING', sessionId: 'S-20261125-01' });
    h.send('c3', 'PAUSE');
    expect(h.console.state).toBe('PAUSED');
    h.send('c4', 'RESUME');
    expect(h.console.state).toBe('RUNNING');
    h.send('c5', 'RINSEBACK');
    expect(h.console.state).toBe('RINSEBACK');
    h.advance(9000);
    expect(h.console.state).toBe('RINSEBACK');
    h.advance(1000);
    expect(h.console.state).toBe('ENDED');
    expect(h.console.sessionId).toBe('S-20261125-01');
    h.send('c6', 'RESET');
    expect(h.states().at(-1)).toMatchObject({ state: 'IDLE', sessionId: null });
    const trail = h.states().map((s) => s.state).filter((s, i, a) => i === 0 || s !== a[i - 1]);
    expect(trail).toEqual(['IDLE', 'SELFTEST', 'PRIMING', 'PRIMED', 'RUNNING', 'PAUSED', 'RUNNING', 'RINSEBACK', 'ENDED', 'IDLE']);
  });

  it('END stops priming at once; its phase timers do not fire afterwards', () => {
    const h = harness();
    h.send('e1', 'PRIME');
    h.advance(3000);
    h.send('e2', 'END');
    h.advance(20_000);
    expect(h.console.state).toBe('ENDED');
  });

  it('internal_fault goes to FAULT from any state; RESET clears it with the EV cleared', () => {
    const h = harness({ autoRun: true });
    h.advance(15_000);
    h.act({ action: 'internal_fault', params: { code: 'PUMP_STALL', text: 'Blood pump stalled' } });
    expect(h.events().at(-1)).toMatchObject({ code: 'PUMP_STALL', prio: 'H', active: true });
    expect(h.console.state).toBe('FAULT');
    h.advance(1000);
    expect(h.telemetry().at(-1)?.v.QB).toBe(0);
    h.send('f1', 'SET', 'QB', 100);
    expect(h.frames.at(-1)).toMatchObject({ type: 'ACK', cmdId: 'f1', result: 'REJ' });
    h.send('f2', 'RESET');
    expect(h.events().at(-1)).toMatchObject({ code: 'PUMP_STALL', active: false });
    expect(h.console.state).toBe('IDLE');
  });

  it('autoRun primes and starts a session by itself', () => {
    const h = harness({ autoRun: { sessionId: 'DEMO-1' } });
    h.advance(10_000);
    expect(h.console.state).toBe('RUNNING');
    expect(h.console.sessionId).toBe('DEMO-1');
    expect(h.frames.some((f) => f.type === 'ACK')).toBe(false); // panel commands are not answered on the line
  });
});

describe('SimulatedConsole ACK rules (ICD §1)', () => {
  it('answers REJ for a command not accepted in the state, with the ICD wording', () => {
    const h = harness();
    h.send('c18', 'START', 'S-20261125-01');
    expect(h.frames.at(-1)).toEqual({ type: 'ACK', cmdId: 'c18', result: 'REJ', detail: 'state IDLE does not accept START' });
    expect(h.console.state).toBe('IDLE');
  });

  it('answers REJ out of limits (QB 0-300, QP ≤ 30 % of QB) and OK within them', () => {
    const h = harness();
    h.send('s1', 'SET', 'QB', 301);
    expect(h.frames.at(-1)).toMatchObject({ result: 'REJ' });
    h.send('s2', 'SET', 'QP', 50); // 50 > 0.3 × 150
    expect(h.frames.at(-1)).toMatchObject({ result: 'REJ' });
    h.send('s3', 'SET', 'QB', 160);
    expect(h.frames.at(-1)).toEqual({ type: 'ACK', cmdId: 's3', result: 'OK', detail: '' });
    h.advance(100);
    expect(h.telemetry().at(-1)?.v.SQB).toBe(160);
  });

  it('answers ERR for a malformed command and stays silent without a readable cmd_id', () => {
    const h = harness();
    h.send('m1', 'SET', 'QB');
    expect(h.frames.at(-1)).toMatchObject({ type: 'ACK', cmdId: 'm1', result: 'ERR' });
    h.console.receive({ type: 'malformed_command', cmdId: 'm2', detail: 'unknown verb "FLY"' });
    expect(h.frames.at(-1)).toEqual({ type: 'ACK', cmdId: 'm2', result: 'ERR', detail: 'unknown verb "FLY"' });
    const n = h.frames.length;
    h.console.receive({ type: 'malformed_command', cmdId: null, detail: 'bad id' });
    h.console.receive({ type: 'discard', reason: 'bad_crc', raw: '$CMD,x', detail: 'crc' });
    expect(h.frames.length).toBe(n);
  });

  it('answers a cmd_id repeated within 60 s with the first result and does not execute it twice', () => {
    const h = harness();
    h.send('p1', 'PRIME');
    const mark = h.frames.length;
    h.advance(30_000);
    expect(h.console.state).toBe('PRIMED');
    const before = h.states().length;
    h.send('p1', 'PRIME'); // would be REJ (state PRIMED) if executed again
    expect(h.frames.at(-1)).toEqual({ type: 'ACK', cmdId: 'p1', result: 'OK', detail: '' });
    expect(h.states().length).toBe(before);
    expect(h.since(mark).filter((f) => f.type === 'S' && f.state === 'SELFTEST')).toEqual([]);
  });

  it('forgets a cmd_id after 60 s: the same id is then a new command', () => {
    const h = harness();
    h.send('p1', 'PRIME');
    h.advance(59_000);
    h.send('p1', 'PRIME');
    expect(h.frames.at(-1)).toMatchObject({ result: 'OK' });
    h.advance(1000);
    h.send('p1', 'PRIME');
    expect(h.frames.at(-1)).toEqual({ type: 'ACK', cmdId: 'p1', result: 'REJ', detail: 'state PRIMED does not accept PRIME' });
  });

  it('ID answers ACK then HELLO; SYNC sets the device clock; RATE changes the rate', () => {
    const h = harness();
    h.send('i1', 'ID');
    expect(h.frames.slice(-2).map((f) => f.type)).toEqual(['ACK', 'HELLO']);
    const target = Date.UTC(2030, 0, 1);
    h.send('y1', 'SYNC', target);
    h.advance(100);
    expect(h.telemetry().at(-1)?.t).toBe(target + 100);
    h.send('r1', 'RATE', 50);
    const mark = h.frames.length;
    h.advance(1000);
    expect(h.telemetry(mark)).toHaveLength(50);
    h.send('r2', 'RATE', 101);
    expect(h.frames.at(-1)).toMatchObject({ result: 'REJ' });
  });

  it('unanswered_command: the next command and its retries get no ACK and are not executed', () => {
    const h = harness();
    h.act({ action: 'unanswered_command', params: { count: 1 } });
    const mark = h.frames.length;
    h.send('u1', 'PRIME');
    h.send('u1', 'PRIME');
    h.send('u1', 'PRIME');
    expect(h.since(mark)).toEqual([]);
    expect(h.console.state).toBe('IDLE');
    h.send('u2', 'PRIME');
    expect(h.frames.at(-2)).toEqual({ type: 'ACK', cmdId: 'u2', result: 'OK', detail: '' });
    expect(h.console.state).toBe('SELFTEST');
  });
});
