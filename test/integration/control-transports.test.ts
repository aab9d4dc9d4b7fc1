/**
 * Control commands end to end through each real transport: the simulator on a socat pty pair and on a
 * real mosquitto, the real SerialTransport / MqttTransport, DeviceHub and CommandService, an audit trail in a
 * temp SQLite. Round trips OK, REJ for out-of-state (the device's answer), 400 for out-of-limit with nothing
 * sent, TIMEOUT with the simulator's unanswered-command fault, and no double execution when an ACK is lost on
 * the way and the command is retried with the same cmd_id.
 * The whole-gateway version (through `new Gateway`, auth included) is control-sim.test.ts.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { AuditLog } from '../../src/audit/auditLog.js';
import { EventBus, type BusEvents } from '../../src/bus.js';
import { CommandService } from '../../src/control/commandService.js';
import { silentLogger } from '../../src/log.js';
import { DeviceHub } from '../../src/model/deviceHub.js';
import type { IngestSink } from '../../src/model/types.js';
import { MqttTransport } from '../../src/transports/mqtt.js';
import { SerialTransport } from '../../src/transports/serial.js';
import type { Transport } from '../../src/transports/types.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-0001';
const operator = { user: 'nurse1', role: 'operator' };
const PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };

interface Rig {
  sim: Simulator;
  transport: Transport;
  hub: DeviceHub;
  bus: EventBus;
  audit: AuditLog;
  commands: CommandService;
  acks: Array<BusEvents['ack']>;
  /** ACK frames to lose between the transport and the hub, the next ones of any cmd_id (a wire fault). */
  loseAcks: { count: number; lost: string[] };
  stop(): Promise<void>;
}

async function rig(kind: 'serial' | 'mqtt', broker: MosquittoBroker | null): Promise<Rig> {
  const logger = silentLogger();
  const bus = new EventBus();
  const hub = new DeviceHub({ bus, logger });
  hub.start();
  const db = new Database(':memory:');
  const audit = new AuditLog({ db });
  audit.start();
  const commands = new CommandService({ bus, hub, audit, logger });
  commands.start();
  const acks: Array<BusEvents['ack']> = [];
  bus.on(acks, 'ack', (a) => acks.push(a));
  const loseAcks = { count: 0, lost: [] as string[] };
  const sink: IngestSink = {
    ingest: (id, frames, link) => hub.ingest(id, frames.filter((f) => {
      if (f.type !== 'ACK' || loseAcks.count === 0) return true;
      loseAcks.count--;
      loseAcks.lost.push(f.cmdId);
      return false;
    }), link),
    discard: (id, source, d) => hub.discard(id, source, d),
    linkDown: (id, reason) => hub.linkDown(id, reason),
    reconnected: (id) => hub.reconnected(id),
  };
  const sim = await startSimulator(kind === 'serial'
    ? { transport: 'serial', pty: true, autoRun: { sessionId: 'S-IT-1' }, phases: PHASES, rate: 10 }
    : { transport: 'mqtt', mqttUrl: broker!.url, autoRun: { sessionId: 'S-IT-1' }, phases: PHASES, rate: 10 });
  const transport: Transport = kind === 'serial'
    ? new SerialTransport({ path: sim.gatewayPath!, sink, logger })
    : new MqttTransport({ url: broker!.url, clientId: `gw-${process.pid}-${Date.now()}`, sink, logger });
  await transport.start();
  await waitFor(() => hub.get(DEV)?.state === 'RUNNING' && hub.get(DEV)?.values.SQB, { timeoutMs: 20_000, message: `${kind}: console RUNNING` });
  return {
    sim, transport, hub, bus, audit, commands, acks, loseAcks,
    async stop() {
      commands.stop();
      await transport.stop();
      await sim.stop();
      hub.stop();
      db.close();
    },
  };
}

function commandRoundTrips(kind: 'serial' | 'mqtt'): void {
  describe(`commands over ${kind}`, () => {
    let broker: MosquittoBroker | null = null;
    let r: Rig;

    beforeEach(async () => {
      if (kind === 'mqtt') broker = await startMosquitto();
      r = await rig(kind, broker);
    }, 30_000);
    afterEach(async () => {
      await r?.stop();
      await broker?.stop();
    });

    const setpoint = (k: string) => r.hub.get(DEV)?.values[k]?.v;
    const sends = (cmdId: string) => r.audit.query().filter((a) => a.action === 'command.sent' && a.detail.cmdId === cmdId);

    it('OK: the setpoint changes on the console', async () => {
      const res = await r.commands.execute(DEV, { verb: 'SET', args: ['QB', 160], reason: 'it' }, operator);
      expect(res).toMatchObject({ ok: true, result: 'OK', tries: 1 });
      await waitFor(() => setpoint('SQB') === 160, { message: 'SQB 160 in telemetry' });
      expect(r.audit.query().map((a) => a.action)).toEqual(['command.requested', 'command.sent', 'command.acknowledged']);
    });

    it('REJ for a verb the state does not accept, with the device reply', async () => {
      const res = await r.commands.execute(DEV, { verb: 'START', args: ['S-OTHER'] }, operator);
      expect(res).toMatchObject({ ok: true, result: 'REJ', detail: expect.stringMatching(/RUNNING/) });
      expect(r.hub.get(DEV)?.state).toBe('RUNNING');
    });

    it('400 for an out-of-limit value, and nothing reaches the console', async () => {
      const acksBefore = r.hub.get(DEV)!.counters.acks;
      const res = await r.commands.execute(DEV, { verb: 'SET', args: ['QB', 350] }, operator);
      expect(res).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
      // A command that reached the console would be answered within 500 ms (ICD §1); give it twice that.
      const probe = await r.commands.execute(DEV, { verb: 'SILENCE', args: [] }, operator);
      expect(probe).toMatchObject({ result: 'OK' });
      expect(r.hub.get(DEV)!.counters.acks).toBe(acksBefore + 1);
      expect(setpoint('SQB')).not.toBe(350);
      expect(r.audit.query().filter((a) => a.action === 'command.sent')).toHaveLength(1);
    });

    it('TIMEOUT after 1 + 3 tries when the console never answers; the command was not executed', async () => {
      r.sim.apply({ action: 'unanswered_command', params: { count: 1 } });
      const started = Date.now();
      const res = await r.commands.execute(DEV, { verb: 'PAUSE', args: [] }, operator);
      expect(res).toMatchObject({ ok: true, result: 'TIMEOUT', tries: 4 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect(sends(res.ok ? res.cmdId : '')).toHaveLength(4);
      expect(r.hub.get(DEV)?.state).toBe('RUNNING');
      // A new cmd_id is answered normally.
      expect(await r.commands.execute(DEV, { verb: 'SET', args: ['HEP', 4] }, operator)).toMatchObject({ result: 'OK' });
    }, 20_000);

    it('no double execution: an ACK lost on the way, the retry with the same cmd_id gets the first result', async () => {
      const states: string[] = [];
      r.bus.on(states, 'state', (s) => states.push(s.state));
      // cmd_ids are random: lose the next ACK, whichever command it answers.
      r.loseAcks.count = 1;
      const res = await r.commands.execute(DEV, { verb: 'PAUSE', args: [] }, operator);
      expect(res).toMatchObject({ ok: true, result: 'OK', tries: 2 });
      const next = res.ok ? res.cmdId : '';
      expect(r.loseAcks.lost).toEqual([next]);
      await waitFor(() => r.hub.get(DEV)?.state === 'PAUSED');
      // The first ACK was lost; the one that arrived answers the retry. Executed again, that PAUSE would have
      // been REJ (PAUSED does not accept PAUSE).
      const answers = r.acks.filter((a) => a.ack.cmdId === next).map((a) => a.ack.result);
      expect(answers).toEqual(['OK']);
      expect(sends(next)).toHaveLength(2);
      expect(states).toEqual(['PAUSED']);
    }, 20_000);
  });
}

commandRoundTrips('serial');
commandRoundTrips('mqtt');
