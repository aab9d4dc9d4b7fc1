/**
 * Alarm scenarios end to end, the way back: when a simulator fault ends, a latched alarm stays
 * RTN_UNACK until acknowledged and a non-latched one returns to NORMAL by itself; a channel left out of the
 * frames is a sensor fault; one instance for the detector and the device's EV from raise to clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import type { AlarmTransition } from '../../src/alarms/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
/** Heater failure and recovery take about 7 minutes of device time. */
const FAST_SPEED = 60;

const AIR = 'CL-AIR', SNS = 'CL-SNS', ABS = 'CL-ABS', FLT = 'CL-FLT';
const HTR = 'CL-HTR';

interface Alarm {
  id: string; device: string; rule: string; source: string; priority: string; state: string; active: boolean;
  latching: boolean; raisedAt: number | null; clearedAt: number | null; sources?: string[];
}

describe('alarm scenarios end to end: faults that end', () => {
  let broker: MosquittoBroker;
  let sim: Simulator;
  let simFast: Simulator;
  let gw: TestGateway;
  const transitions: AlarmTransition[] = [];

  const all = async (device: string): Promise<Alarm[]> =>
    (await gw.get<{ alarms: Alarm[] }>(`/api/alarms?state=all&device=${encodeURIComponent(device)}`)).body.alarms;
  const find = (device: string, rule: string, pred: (a: Alarm) => boolean, timeoutMs = 15_000) =>
    waitFor(async () => (await all(device)).find((a) => a.rule === rule && pred(a)), {
      timeoutMs, message: `${device}:${rule} as expected`,
    });
  const kinds = (id: string) => transitions.filter((t) => t.alarm.id === id).map((t) => `${t.kind} ${t.from}->${t.to}`);

  beforeAll(async () => {
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-alarms-clear' } });
    gw.gateway.bus.on(transitions, 'alarm', (t) => transitions.push(t));
    [sim, simFast] = await Promise.all([
      startSimulator({
        transport: 'mqtt', mqttUrl: broker.url, deviceIds: [AIR, SNS, ABS, FLT], autoRun: true, phases: FAST_PHASES,
        seed: 41, rate: 5,
      }),
      startSimulator({
        transport: 'mqtt', mqttUrl: broker.url, deviceIds: [HTR], autoRun: true, phases: FAST_PHASES, seed: 42, rate: 1,
        speed: FAST_SPEED,
      }),
    ]);
    await waitFor(async () => {
      const { body } = await gw.get<{ devices: Array<{ id: string; state: string; values: Record<string, { v: number | null }> }> }>('/api/devices');
      const ready = body.devices.filter((d) => d.state === 'RUNNING' && (d.values.QB?.v ?? 0) > 140);
      return ready.length === 5;
    }, { timeoutMs: 20_000, message: 'every console RUNNING at full blood flow' });

    sim.apply({ action: 'air_in_line', device: AIR, duration: '2s' });
    sim.apply({ action: 'sensor_fault', device: SNS, duration: '2s', params: { channel: 'PV' } });
    sim.apply({ action: 'sensor_fault', device: ABS, params: { channel: 'PA', mode: 'absent' } });
    sim.apply({ action: 'internal_fault', device: FLT, params: { code: 'PUMP_DRIVE', text: 'Blood pump drive fault' } });
    simFast.apply({ action: 'heater_failure', device: HTR, duration: '5m', params: { mode: 'off' } });
  });

  afterAll(async () => {
    await Promise.allSettled([sim?.stop(), simFast?.stop()]);
    await gw?.stop();
    await broker?.stop();
  });

  it('air in line: one instance from raise to clear, RTN_UNACK once detector and EV have cleared, NORMAL on ack', async () => {
    const latched = await find(AIR, 'AIR_IN_LINE', (a) => a.state === 'RTN_UNACK');
    expect(latched).toMatchObject({ priority: 'HIGH', active: false, sources: [] });
    expect(kinds(`${AIR}:AIR_IN_LINE`)).toEqual(['raise NORMAL->UNACK', 'clear UNACK->RTN_UNACK']);
    expect((await all(AIR)).some((a) => a.rule === 'DEV_AIR_DETECTED')).toBe(false);
    // The device paused itself and stays paused: the air is gone, but resuming is the operator's decision.
    expect((await gw.get<{ state: string }>(`/api/devices/${AIR}`)).body.state).toBe('PAUSED');
    const r = await gw.post<{ alarm: Alarm }>(`/api/alarms/${encodeURIComponent(`${AIR}:AIR_IN_LINE`)}/ack`, {});
    expect(r.status).toBe(200);
    expect(r.body.alarm).toMatchObject({ state: 'NORMAL', active: false });
  });

  it('a sensor fault that ends clears SENSOR_FAULT_PV by itself (not latching)', async () => {
    await find(SNS, 'SENSOR_FAULT_PV', (a) => a.state === 'NORMAL');
    expect(kinds(`${SNS}:SENSOR_FAULT_PV`)).toEqual(['raise NORMAL->UNACK', 'clear UNACK->NORMAL']);
    const raised = transitions.find((t) => t.alarm.id === `${SNS}:SENSOR_FAULT_PV`)!;
    expect(raised.alarm.priority).toBe('HIGH');
  });

  it('a required channel left out of the frames for 5 s is a sensor fault', async () => {
    const a = await find(ABS, 'SENSOR_FAULT_PA', (x) => x.state === 'UNACK');
    // PA_LOW (HIGH) reads PA while RUNNING.
    expect(a).toMatchObject({ source: 'technical', priority: 'HIGH', active: true });
    const first = transitions.find((t) => t.alarm.id === `${ABS}:SENSOR_FAULT_PA`)!;
    const lastPa = (await gw.get<{ values: Record<string, { t: number }> }>(`/api/devices/${ABS}`)).body.values.PA.t;
    // On device time: 5 s after the last PA reading (the device clock runs with the gateway's here).
    expect(first.at - lastPa).toBeGreaterThanOrEqual(4500);
  });

  it('an internal fault cleared by RESET leaves DEV_<code> latched (HIGH) until acknowledged', async () => {
    await find(FLT, 'DEV_PUMP_DRIVE', (a) => a.state === 'UNACK');
    sim.apply({ action: 'command', device: FLT, params: { verb: 'RESET' } });
    const a = await find(FLT, 'DEV_PUMP_DRIVE', (x) => x.state === 'RTN_UNACK');
    expect(a).toMatchObject({ source: 'device', priority: 'HIGH', active: false });
    await waitFor(async () => (await gw.get<{ state: string }>(`/api/devices/${FLT}`)).body.state === 'IDLE', { message: 'IDLE after RESET' });
  });

  it('heater failure and recovery: TR_CRITICAL latched RTN_UNACK, TR_DEVIATION back to NORMAL', async () => {
    const critical = await find(HTR, 'TR_CRITICAL', (a) => a.state === 'RTN_UNACK', 30_000);
    expect(critical).toMatchObject({ priority: 'HIGH', active: false });
    const deviation = await find(HTR, 'TR_DEVIATION', (a) => a.state === 'NORMAL', 30_000);
    expect(deviation.priority).toBe('MEDIUM');
    expect(kinds(`${HTR}:TR_DEVIATION`)).toEqual(['raise NORMAL->UNACK', 'clear UNACK->NORMAL']);
    expect(kinds(`${HTR}:TR_CRITICAL`)).toEqual(['raise NORMAL->UNACK', 'clear UNACK->RTN_UNACK']);
  });
});
