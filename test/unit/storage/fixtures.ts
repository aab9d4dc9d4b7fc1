/** Builders and temp directories shared by the storage unit tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlarmTransition } from '../../../src/alarms/types.js';
import type { DeviceEvent, StateChange, TelemetrySample } from '../../../src/bus.js';
import type { ChannelValues } from '../../../src/protocol/types.js';

export const T0 = 1_764_061_200_000;

export function tempDir(prefix = 'msc-storage-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sample(seq: number, v: ChannelValues, over: Partial<TelemetrySample> = {}): TelemetrySample {
  return { deviceId: 'MSC-0001', sessionId: 'S-1', seq, t: T0 + seq * 40, rx: T0 + seq * 40 + 5, v, ...over };
}

export function stateChange(seq: number, state: StateChange['state'], over: Partial<StateChange> = {}): StateChange {
  return { deviceId: 'MSC-0001', seq, t: T0 + seq * 40, rx: T0 + seq * 40 + 5, state, sessionId: 'S-1', previous: null, ...over };
}

export function deviceEvent(seq: number, code: string, over: Partial<DeviceEvent> = {}): DeviceEvent {
  return {
    deviceId: 'MSC-0001', sessionId: 'S-1', seq, t: T0 + seq * 40, rx: T0 + seq * 40 + 5, code, prio: 'H', active: true,
    text: 'Air detected in venous line', ...over,
  };
}

export function alarmTransition(at: number, rule = 'PV_HIGH', kind: AlarmTransition['kind'] = 'raise'): AlarmTransition {
  return {
    kind, at, from: 'NORMAL', to: 'UNACK', actor: null, reason: null,
    alarm: {
      id: `MSC-0001:${rule}`, device: 'MSC-0001', rule, source: 'process', priority: 'HIGH', state: 'UNACK', active: true,
      latching: false, raisedAt: at, clearedAt: null, value: 312.5, limit: 300, message: 'Venous pressure high',
      ackedBy: null, ackedAt: null, shelvedUntil: null, sessionId: 'S-1',
    },
  };
}

/** The 16 measured channels of ICD §1 with plausible RUNNING values. */
export function fullValues(i: number): ChannelValues {
  return {
    QB: 150 + (i % 10) / 10, QP: 30.2, QR: 200, PA: -85.4, PF: 142, PV: 118.6 + (i % 7) / 10, PP: 86.1, TMP: 44.2,
    DPR: 20.5, TR: 37.02, TB: 36.6, HEP: 5, AIR: 0, BLD: 0, SQB: 150, SQP: 30,
  };
}
