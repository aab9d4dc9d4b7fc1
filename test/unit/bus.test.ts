/**
 * EventBus: a listener that throws is counted and logged under its owner; the listeners after it and the
 * emitter carry on.
 */
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/bus.js';
import { metricsTextOf } from '../../src/metrics.js';

class Broken {}
class Journal {}

const sample = (seq: number) => ({ deviceId: 'MSC-0001', sessionId: null, seq, t: seq, rx: seq, v: { QB: 150 } });

describe('EventBus', () => {
  it('isolates a throwing listener: the others still see every event and emit does not throw', async () => {
    const logs: Array<{ obj: object; msg: string }> = [];
    let now = 0;
    const bus = new EventBus({ logger: { error: (obj, msg) => logs.push({ obj, msg }) }, now: () => now });
    const seen: number[] = [];
    bus.on(new Broken(), 'telemetry', () => { throw new Error('bug in a part'); });
    bus.on(new Journal(), 'telemetry', (s) => seen.push(s.seq));
    expect(() => { for (let i = 1; i <= 5; i++) bus.emit('telemetry', sample(i)); }).not.toThrow();
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(bus.listenerFailures()).toEqual([{ owner: 'Broken', event: 'telemetry', count: 5 }]);
    expect(await metricsTextOf((r) => bus.registerMetrics(r))).toContain('msc_bus_listener_errors_total{listener="Broken",event="telemetry"} 5');
    // Throttled: one line, then one a minute later carrying the count it suppressed.
    expect(logs).toHaveLength(1);
    expect(logs[0].msg).toMatch(/Broken failed handling telemetry/);
    expect(JSON.stringify(logs[0].obj)).toContain('bug in a part');
    now = 60_000;
    bus.emit('telemetry', sample(6));
    expect(logs).toHaveLength(2);
    expect(logs[1].obj).toMatchObject({ suppressed: 4 });
  });

  it('keeps registration order, removes by owner, and lets a listener remove its owner while emitting', () => {
    const bus = new EventBus();
    const order: string[] = [];
    const a = {};
    const b = {};
    bus.on(a, 'telemetry', () => { order.push('a'); bus.removeOwner(b); });
    bus.on(b, 'telemetry', () => order.push('b'));
    bus.emit('telemetry', sample(1));
    bus.emit('telemetry', sample(2));
    // The emit in progress still calls b (a snapshot); the next one does not.
    expect(order).toEqual(['a', 'b', 'a']);
    bus.removeOwner(a);
    bus.emit('telemetry', sample(3));
    expect(order).toEqual(['a', 'b', 'a']);
  });
});
