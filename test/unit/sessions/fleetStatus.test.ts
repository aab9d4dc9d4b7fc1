/** FleetStatusWriter's line protocol (fleet dashboard): what the fleet panels query. */
import { describe, expect, it } from 'vitest';
import type { DeviceSnapshot } from '../../../src/model/types.js';
import { FleetStatusWriter } from '../../../src/sessions/fleetStatus.js';

const T = 1_764_061_200_000;

function device(over: Partial<DeviceSnapshot> = {}): DeviceSnapshot {
  return {
    id: 'MSC 0001', model: null, fw: null, serialNo: null, icd: 1, transport: 'mqtt', source: 'mqtt://b', link: 'connected',
    linkReason: null, lastSeen: T, state: 'RUNNING', stateSince: T, sessionId: 'S-1', values: {}, clockOffsetMs: -12,
    telemetryPeriodMs: 100,
    counters: { frames: 990, telemetry: 980, states: 5, events: 5, acks: 0, discards: {}, seqGaps: 2, framesLost: 10, duplicates: 1, reconnects: 3 },
    ...over,
  };
}

function writer(devices: DeviceSnapshot[]) {
  return new FleetStatusWriter({
    influx: { url: 'http://127.0.0.1:1/msc' }, gateway: 'ward-pc', devices: () => devices, now: () => T,
    forwarder: () => ({ lines: 42, seconds: 3.5, lastError: null, connected: true, written: 0, batches: 0, errors: 0, target: 'x' }),
    journal: () => ({ writable: true, lastError: null, pending: 7, appended: 0, committed: 0, duplicates: 0, droppedWhileFailed: 0, failures: 0, commits: 0, lastCommitAt: null, dbBytes: 0 }),
    database: () => null, logger: { warn() {} },
  });
}

describe('FleetStatusWriter.statusLines', () => {
  it('one gateway_device point per console (escaped tags, integer counters, loss of expected frames) and one gateway point, in ns', () => {
    const lines = writer([device(), device({ id: 'MSC-0002', link: 'lost', state: null, sessionId: null, clockOffsetMs: null })]).statusLines(T);
    expect(lines).toEqual([
      'gateway_device,device=MSC\\ 0001,gateway=ward-pc link="connected",link_up=1i,state="RUNNING",frames=990i,frames_lost=10i,'
        + 'seq_gaps=2i,duplicates=1i,reconnects=3i,loss_pct=1,session="S-1",clock_offset_ms=-12 ' + T + '000000',
      'gateway_device,device=MSC-0002,gateway=ward-pc link="lost",link_up=0i,state="UNKNOWN",frames=990i,frames_lost=10i,'
        + 'seq_gaps=2i,duplicates=1i,reconnects=3i,loss_pct=1 ' + T + '000000',
      'gateway,gateway=ward-pc backlog_lines=42i,backlog_seconds=3.5,influx_connected=true,journal_writable=true,journal_pending=7i,'
        + 'journal_dropped=0i,devices=2i ' + T + '000000',
    ]);
  });

  it('a console with no frames yet has 0 % loss, not NaN', () => {
    const c = device().counters;
    const [line] = writer([device({ counters: { ...c, frames: 0, framesLost: 0 } })]).statusLines(T);
    expect(line).toContain('loss_pct=0,');
  });
});
