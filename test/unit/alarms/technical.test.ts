import { describe, expect, it } from 'vitest';
import { MemoryAlarmStore } from '../../../src/alarms/store.js';
import { NURSE, OK, harness, snapshot } from './engineHarness.js';
import { metricsTextOf } from '../../../src/metrics.js';

describe('device alarms and sources', () => {
  it('device EV alarms pass through with the device priority, never downgraded; I is not an alarm', () => {
    const h = harness().start();
    h.event('HEATER_FAULT', 'H', true);
    expect(h.get('D1:DEV_HEATER_FAULT')).toMatchObject({ source: 'device', priority: 'HIGH', state: 'UNACK', message: 'HEATER_FAULT text' });
    h.event('HEATER_FAULT', 'L', true);
    expect(h.get('D1:DEV_HEATER_FAULT')!.priority).toBe('HIGH');
    h.event('DOOR_OPENED', 'I', true);
    expect(h.get('D1:DEV_DOOR_OPENED')).toBeUndefined();
    h.event('HEATER_FAULT', 'H', false);
    expect(h.get('D1:DEV_HEATER_FAULT')).toMatchObject({ state: 'RTN_UNACK', active: false });
    h.event('FILTER_WARN', 'M', true);
    h.event('FILTER_WARN', 'M', false);
    expect(h.get('D1:DEV_FILTER_WARN')!.state).toBe('NORMAL');
  });

  it('one instance when the device and the gateway report the same condition; it clears when both clear', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.event('AIR_DETECTED', 'H', true);
    h.frame({ ...OK, AIR: 1 });
    const air = h.engine.list().filter((a) => a.rule === 'AIR_IN_LINE');
    expect(air).toHaveLength(1);
    expect(air[0]).toMatchObject({ id: 'D1:AIR_IN_LINE', source: 'device', sources: ['device', 'process'] });
    expect(h.kinds('D1:AIR_IN_LINE')).toEqual(['raise:UNACK']);
    h.frame(OK);
    expect(h.get('D1:AIR_IN_LINE')).toMatchObject({ active: true, state: 'UNACK' });
    h.event('AIR_DETECTED', 'H', false);
    expect(h.get('D1:AIR_IN_LINE')).toMatchObject({ active: false, state: 'RTN_UNACK' });
  });

  it('external conditions (storage) raise gateway-wide technical alarms', () => {
    const h = harness().start();
    h.engine.setExternalCondition({
      device: 'gateway', rule: 'STORAGE_BACKLOG', active: true, priority: 'MEDIUM', message: 'journal backlog 12 s', value: 12, limit: 10,
    });
    expect(h.get('gateway:STORAGE_BACKLOG')).toMatchObject({ source: 'technical', priority: 'MEDIUM', state: 'UNACK', value: 12 });
    h.engine.setExternalCondition({ device: 'gateway', rule: 'STORAGE_BACKLOG', active: false, priority: 'MEDIUM', message: 'ok' });
    expect(h.get('gateway:STORAGE_BACKLOG')!.state).toBe('NORMAL');
  });
});

describe('technical alarms', () => {
  it('COMM_LOSS on silence, on gateway time: > max(3 s, 3 periods), cleared when frames return', () => {
    const h = harness().start();
    h.snaps.set('D1', snapshot('D1', { telemetryPeriodMs: 2000 }));
    h.state('RUNNING');
    h.frame(OK);
    h.advance(6000);
    expect(h.get('D1:COMM_LOSS')).toBeUndefined();
    h.advance(1000);
    expect(h.get('D1:COMM_LOSS')).toMatchObject({ priority: 'HIGH', source: 'technical', state: 'UNACK', limit: 6 });
    h.frame(OK);
    expect(h.get('D1:COMM_LOSS')!.state).toBe('NORMAL');
  });

  it('COMM_LOSS also while the state is unknown, not in IDLE or ENDED', () => {
    const h = harness().start();
    h.frame(OK, 'D2');
    h.frame(OK, 'D3');
    h.state('IDLE', 'D3');
    h.advance(4000);
    expect(h.get('D2:COMM_LOSS')).toMatchObject({ state: 'UNACK', priority: 'HIGH' });
    expect(h.get('D3:COMM_LOSS')).toBeUndefined();
    h.state('ENDED', 'D2');
    expect(h.get('D2:COMM_LOSS')!.state).toBe('NORMAL');
  });

  it('COMM_LOSS at once when the transport reports the link lost', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.frame(OK);
    h.bus.emit('link', { deviceId: 'D1', link: 'lost', at: h.clock.now(), reason: 'port closed' });
    expect(h.get('D1:COMM_LOSS')).toMatchObject({ state: 'UNACK', message: 'Link to D1 lost: port closed' });
    // The reason, not the silence so far dressed as a measured value.
    expect(h.get('D1:COMM_LOSS')).toMatchObject({ value: null, limit: null });
  });

  it('COMM_LOSS when state frames arrive but telemetry stopped', () => {
    const h = harness().start();
    h.state('RUNNING');
    h.frame(OK);
    h.advance(2000);
    h.state('PAUSED');
    h.advance(2000);
    expect(h.get('D1:COMM_LOSS')).toMatchObject({ state: 'UNACK' });
    expect(h.get('D1:COMM_LOSS')!.message).toMatch(/No telemetry/);
  });

  it('FRAME_LOSS above 1 % over 60 s, DISCARD_RATE above 5 and 1 %, CLOCK_SKEW beyond 2 s', () => {
    const h = harness().start();
    const s = snapshot('D1', { state: 'RUNNING' });
    h.snaps.set('D1', s);
    h.state('RUNNING');
    const grow = (n: number, lost: number, discards: number) => {
      for (let i = 0; i < n; i++) {
        const c = s.counters;
        s.counters = {
          ...c, telemetry: c.telemetry + 10, frames: c.frames + 10, framesLost: c.framesLost + lost,
          discards: { bad_crc: (c.discards.bad_crc ?? 0) + discards },
        };
        h.advance(1000, OK);
      }
    };
    grow(30, 0, 0);
    expect(h.get('D1:FRAME_LOSS')).toBeUndefined();
    grow(10, 1, 1);
    expect(h.get('D1:FRAME_LOSS')).toMatchObject({ priority: 'MEDIUM', state: 'UNACK' });
    expect(h.get('D1:DISCARD_RATE')).toMatchObject({ priority: 'LOW', state: 'UNACK' });
    grow(70, 0, 0);
    expect(h.get('D1:FRAME_LOSS')!.state).toBe('NORMAL');
    expect(h.get('D1:DISCARD_RATE')!.state).toBe('NORMAL');
    s.clockOffsetMs = -2500;
    h.advance(1000, OK);
    expect(h.get('D1:CLOCK_SKEW')).toMatchObject({ priority: 'LOW', value: -2.5 });
    s.clockOffsetMs = 1900;
    h.advance(1000, OK);
    expect(h.get('D1:CLOCK_SKEW')!.active).toBe(true);
    s.clockOffsetMs = 1700;
    h.advance(1000, OK);
    expect(h.get('D1:CLOCK_SKEW')!.active).toBe(false);
  });

  it('DATA_DELAYED (MEDIUM) while samples arrive more than 5 s late; cleared below 4.5 s; silence is COMM_LOSS, not this', () => {
    const h = harness().start();
    const s = snapshot('D1', { state: 'RUNNING' });
    h.snaps.set('D1', s);
    h.state('RUNNING');
    h.advance(1000, OK);
    s.dataLateMs = 5000;
    h.advance(1000, OK);
    expect(h.get('D1:DATA_DELAYED')).toBeUndefined();
    s.dataLateMs = 6200;
    h.advance(1000, OK);
    expect(h.get('D1:DATA_DELAYED')).toMatchObject({ source: 'technical', priority: 'MEDIUM', state: 'UNACK', active: true, value: 6.2, limit: 5 });
    s.dataLateMs = 4600;
    h.advance(1000, OK);
    expect(h.get('D1:DATA_DELAYED')!.active).toBe(true);
    s.dataLateMs = 300;
    h.advance(1000, OK);
    expect(h.get('D1:DATA_DELAYED')!.active).toBe(false);
    // A late last sample followed by silence: COMM_LOSS says it; DATA_DELAYED does not hold on to the old figure.
    s.dataLateMs = 9000;
    h.advance(1000, OK);
    expect(h.get('D1:DATA_DELAYED')!.active).toBe(true);
    h.advance(5000);
    expect(h.get('D1:COMM_LOSS')!.active).toBe(true);
    expect(h.get('D1:DATA_DELAYED')!.active).toBe(false);
  });

  it('flood metric: alarms per 10 min per device, flood above 10', async () => {
    const h = harness().start();
    h.state('RUNNING');
    for (let i = 0; i < 11; i++) {
      h.frame({ ...OK, AIR: 1 });
      h.frame(OK);
      h.engine.ack('D1:AIR_IN_LINE', NURSE);
    }
    let text = await metricsTextOf((r) => h.engine.registerMetrics(r));
    expect(text).toContain('msc_alarms_10min{device="D1"} 11');
    expect(text).toContain('msc_alarm_flood{device="D1"} 1');
    h.advance(601_000, OK);
    text = await metricsTextOf((r) => h.engine.registerMetrics(r));
    expect(text).toContain('msc_alarms_10min{device="D1"} 0');
    expect(text).toContain('msc_alarm_flood{device="D1"} 0');
  });
});

describe('technical alarms across a restart', () => {
  it('a restored COMM_LOSS stays active until the device talks again', () => {
    const store = new MemoryAlarmStore();
    const a = harness({ store }).start();
    a.state('RUNNING');
    a.frame(OK);
    a.advance(4000);
    expect(a.get('D1:COMM_LOSS')!.active).toBe(true);
    a.engine.stop();

    const b = harness({ store, start: a.clock.now() + 60_000 }).start();
    b.advance(5000);
    expect(b.get('D1:COMM_LOSS')).toMatchObject({ active: true, state: 'UNACK' });
    b.state('RUNNING');
    b.frame(OK);
    expect(b.get('D1:COMM_LOSS')).toMatchObject({ active: false, state: 'NORMAL' });
  });
});
