/**
 * Control commands through the whole gateway: the simulator on a socat pty AND on a real mosquitto,
 * `POST /api/devices/:id/commands` and the live stream with the operator token, the audit trail read back with
 * the engineer token, annotations, and `msc-gateway audit verify` on the journal before and after tampering.
 * The same round trips at transport level, without the HTTP/auth layer: control-transports.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import type { DeviceFrame } from '../../src/protocol/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const SESSION = 'S-CTL-1';

interface AuditRow {
  id: number;
  user: string;
  role: string;
  device: string | null;
  session: string | null;
  action: string;
  outcome: string;
  detail: Record<string, any>;
}

function controlThrough(kind: 'serial' | 'mqtt', dev: string): void {
  describe(`commands through the gateway over ${kind}`, () => {
    let broker: MosquittoBroker | null = null;
    let sim: Simulator;
    let gw: TestGateway;
    let dataDir: string;
    /** cmd_id of every command line/payload the console received, in order (a tap: the console still handles it). */
    const received: Array<{ cmdId: string | null; verb: string | null }> = [];
    /** cmd_ids of the steps below, to find their audit records. */
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), `msc-ctl-${kind}-`));
      if (kind === 'mqtt') broker = await startMosquitto();
      sim = await startSimulator(kind === 'serial'
        ? { transport: 'serial', pty: true, deviceIds: [dev], autoRun: { sessionId: SESSION }, phases: PHASES, rate: 10, record: true }
        : { transport: 'mqtt', mqttUrl: broker!.url, deviceIds: [dev], autoRun: { sessionId: SESSION }, phases: PHASES, rate: 10, record: true });
      const console0 = sim.consoles[0];
      const receive = console0.receive.bind(console0);
      console0.receive = (d) => {
        received.push(d.type === 'command' ? { cmdId: d.cmd.cmdId, verb: d.cmd.verb } : { cmdId: d.type === 'malformed_command' ? d.cmdId : null, verb: null });
        receive(d);
      };
      gw = await startTestGateway(kind === 'serial'
        ? { serial: [{ path: sim.gatewayPath! }] }
        : { mqtt: { url: broker!.url, clientId: `gw-ctl-${process.pid}` } }, { dataDir });
      await waitFor(async () => {
        const d = (await gw.get(`/api/devices/${dev}`)).body;
        return d.state === 'RUNNING' && d.link === 'connected' && typeof d.values?.SQB?.v === 'number';
      }, { timeoutMs: 20_000, message: `${kind}: console RUNNING in the gateway` });
    });

    afterAll(async () => {
      await sim?.stop();
      await gw?.stop();
      await broker?.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const command = (body: unknown, token?: string) => gw.post(`/api/devices/${dev}/commands`, body, token);
    const commandsReceived = () => sim.stats().perDevice[dev].commandsReceived;
    const audit = async (): Promise<AuditRow[]> => {
      const r = await gw.get<{ records: AuditRow[] }>('/api/audit', gw.tokens.engineer);
      expect(r.status).toBe(200);
      return r.body.records;
    };
    const trailOf = (rows: AuditRow[], cmdId: string) => rows.filter((r) => r.detail.cmdId === cmdId);

    it('SET QB 160: OK, the console\'s setpoint becomes 160 and SQB in telemetry follows', async () => {
      const r = await command({ verb: 'SET', args: ['QB', 160], reason: 'raise blood flow' });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ result: 'OK', tries: 1, detail: '' });
      ids.set = r.body.cmdId;
      expect(sim.consoles[0].setpoints.QB).toBe(160);
      await waitFor(async () => (await gw.get(`/api/devices/${dev}`)).body.values.SQB.v === 160, { message: 'SQB 160 in telemetry' });
    });

    it('START while RUNNING: the device\'s REJ with its reason', async () => {
      const r = await command({ verb: 'START', args: ['S-OTHER'] });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ result: 'REJ', tries: 1, detail: expect.stringMatching(/RUNNING/) });
      ids.start = r.body.cmdId;
      expect(sim.consoles[0].state).toBe('RUNNING');
      expect(sim.consoles[0].sessionId).toBe(SESSION);
    });

    it('SET QB 999: 400 naming the field, and nothing reaches the console', async () => {
      const before = commandsReceived();
      const tapped = received.length;
      const r = await command({ verb: 'SET', args: ['QB', 999] });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'out_of_limits', issues: [{ path: 'args' }] });
      expect(r.body.message).toMatch(/QB/);
      // A probe after it: a command sent before the probe would have arrived before it on the same ordered link.
      const probe = await command({ verb: 'SILENCE', args: [] });
      expect(probe.body).toMatchObject({ result: 'OK' });
      expect(commandsReceived()).toBe(before + 1);
      expect(received.slice(tapped).map((c) => c.verb)).toEqual(['SILENCE']);
      expect(sim.consoles[0].setpoints.QB).toBe(160);
    });

    it('an unanswered command: TIMEOUT after 1 + 3 tries of the same cmd_id, executed 0 times', async () => {
      const tapped = received.length;
      const before = commandsReceived();
      sim.apply({ action: 'unanswered_command', params: { count: 1 } });
      const started = Date.now();
      const r = await command({ verb: 'PAUSE', args: [], reason: 'test the retry' });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ result: 'TIMEOUT', tries: 4 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(4 * 500 - 100);
      ids.timeout = r.body.cmdId;
      expect(received.slice(tapped)).toEqual(Array(4).fill({ cmdId: r.body.cmdId, verb: 'PAUSE' }));
      expect(commandsReceived()).toBe(before + 4);
      expect(sim.consoles[0].state).toBe('RUNNING');
      const acks = sim.recorded(dev).filter((f) => f.frame.type === 'ACK' && f.frame.cmdId === r.body.cmdId);
      expect(acks).toEqual([]);
    });

    it('an ACK lost on the way: the retry with the same cmd_id gets the first result, executed once', async () => {
      // A wire fault between the transport and the device model (as in control-transports.test.ts): the next
      // ACK frame is lost after the console executed the command. The simulator has no such fault of its own.
      const hub = gw.gateway.hub;
      const ingest = hub.ingest;
      let lose = 1;
      const lost: string[] = [];
      hub.ingest = (id: string, frames: DeviceFrame[], link) => ingest.call(hub, id, frames.filter((f) => {
        if (f.type !== 'ACK' || lose === 0) return true;
        lose--;
        lost.push(f.cmdId);
        return false;
      }), link);
      const recordedBefore = sim.recorded(dev).length;
      const tapped = received.length;
      try {
        const r = await command({ verb: 'PAUSE', args: [] });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({ result: 'OK', tries: 2 });
        ids.lostAck = r.body.cmdId;
        expect(lost).toEqual([r.body.cmdId]);
        expect(received.slice(tapped)).toEqual(Array(2).fill({ cmdId: r.body.cmdId, verb: 'PAUSE' }));
      } finally {
        hub.ingest = ingest;
      }
      expect(sim.consoles[0].state).toBe('PAUSED');
      const after = sim.recorded(dev).slice(recordedBefore).map((f) => f.frame);
      // Executed twice, the second PAUSE would have been REJ (PAUSED does not accept PAUSE) and a second S frame.
      expect(after.filter((f) => f.type === 'ACK').map((f) => f.type === 'ACK' && [f.cmdId, f.result]))
        .toEqual([[ids.lostAck, 'OK'], [ids.lostAck, 'OK']]);
      expect(after.filter((f) => f.type === 'S' && f.state === 'PAUSED')).toHaveLength(1);
      await waitFor(async () => (await gw.get(`/api/devices/${dev}`)).body.state === 'PAUSED', { message: 'PAUSED in the gateway' });
    });

    it('the same over the live stream: command -> commandResult, with limits and REJ', async () => {
      const ws = new WebSocket(gw.url.replace('http', 'ws') + '/ws', ['msc.v1', `bearer.${gw.tokens.operator}`]);
      const messages: any[] = [];
      ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      const result = (id: string) => waitFor(() => messages.find((m) => m.type === 'commandResult' && m.id === id), { message: `commandResult ${id}` });
      try {
        ws.send(JSON.stringify({ type: 'command', id: 'w1', device: dev, verb: 'RESUME', args: [], reason: 'resume after test' }));
        expect(await result('w1')).toMatchObject({ status: 200, result: 'OK', tries: 1 });
        expect(sim.consoles[0].state).toBe('RUNNING');
        ws.send(JSON.stringify({ type: 'command', id: 'w2', device: dev, verb: 'SET', args: ['QB', 150] }));
        const w2 = await result('w2');
        expect(w2).toMatchObject({ status: 200, result: 'OK' });
        ids.ws = w2.cmdId;
        expect(sim.consoles[0].setpoints.QB).toBe(150);
        const before = commandsReceived();
        ws.send(JSON.stringify({ type: 'command', id: 'w3', device: dev, verb: 'SET', args: ['QB', 999] }));
        expect(await result('w3')).toMatchObject({ status: 400, error: 'out_of_limits' });
        ws.send(JSON.stringify({ type: 'command', id: 'w4', device: dev, verb: 'RESET', args: [] }));
        expect(await result('w4')).toMatchObject({ status: 200, result: 'REJ', detail: expect.stringMatching(/RUNNING/) });
        expect(commandsReceived()).toBe(before + 1); // the RESET only
        await waitFor(async () => (await gw.get(`/api/devices/${dev}`)).body.values.SQB.v === 150, { message: 'SQB 150 in telemetry' });
      } finally {
        ws.close();
      }
    });

    it('puts every step in the audit trail, with user and role', async () => {
      const rows = await audit();
      const steps = (cmdId: string) => trailOf(rows, cmdId).map((r) => [r.action, r.outcome]);
      expect(steps(ids.set)).toEqual([['command.requested', 'accepted'], ['command.sent', 'sent'], ['command.acknowledged', 'OK']]);
      expect(steps(ids.start)).toEqual([['command.requested', 'accepted'], ['command.sent', 'sent'], ['command.rejected', 'REJ']]);
      expect(steps(ids.timeout)).toEqual([
        ['command.requested', 'accepted'], ...Array(4).fill(['command.sent', 'sent']), ['command.timed_out', 'TIMEOUT'],
      ]);
      expect(trailOf(rows, ids.timeout).filter((r) => r.action === 'command.sent').map((r) => r.detail.try)).toEqual([1, 2, 3, 4]);
      expect(steps(ids.lostAck)).toEqual([
        ['command.requested', 'accepted'], ['command.sent', 'sent'], ['command.sent', 'sent'], ['command.acknowledged', 'OK'],
      ]);
      expect(steps(ids.ws)).toEqual([['command.requested', 'accepted'], ['command.sent', 'sent'], ['command.acknowledged', 'OK']]);
      for (const id of Object.values(ids)) {
        for (const r of trailOf(rows, id)) expect(r).toMatchObject({ user: 'test-operator', role: 'operator', device: dev, session: SESSION });
      }
      const set = trailOf(rows, ids.set)[0];
      expect(set.detail).toMatchObject({ verb: 'SET', args: ['QB', 160], reason: 'raise blood flow', state: 'RUNNING' });
      expect(trailOf(rows, ids.set)[1].detail).toMatchObject({ transport: kind, try: 1 });
      const refused = rows.filter((r) => r.action === 'command.requested' && r.outcome === 'refused');
      expect(refused.map((r) => [r.detail.args, r.detail.refusal])).toEqual([[['QB', 999], 'out_of_limits'], [['QB', 999], 'out_of_limits']]);
      expect(refused.every((r) => r.user === 'test-operator' && r.role === 'operator')).toBe(true);
    });

    it('records an adverse event: 201, listed by session with its count, and audited', async () => {
      const r = await gw.post(`/api/devices/${dev}/annotations`, { kind: 'adverse_event', subtype: 'hypotension', text: 'MAP 55 mmHg, QB lowered' });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ device: dev, session: SESSION, kind: 'adverse_event', subtype: 'hypotension', user: 'test-operator', role: 'operator' });
      const list = await gw.get(`/api/annotations?session=${SESSION}`, gw.tokens.viewer);
      expect(list.status).toBe(200);
      expect(list.body.annotations).toEqual([expect.objectContaining({ id: r.body.id, text: 'MAP 55 mmHg, QB lowered' })]);
      expect(list.body.adverseEvents).toMatchObject({ hypotension: 1, fever: 0 });
      const rec = (await audit()).find((a) => a.id === r.body.auditId);
      expect(rec).toMatchObject({ action: 'annotation.add', user: 'test-operator', role: 'operator', device: dev, session: SESSION });
      expect(rec!.detail).toMatchObject({ kind: 'adverse_event', subtype: 'hypotension' });
    });

    it('a console whose link is lost: 409, nothing sent, the refusal audited', async () => {
      const sentBefore = (await audit()).filter((r) => r.action === 'command.sent').length;
      // Serial: the device end of the pty goes silent, seen after the silence timeout; MQTT: the last will.
      sim.apply({ action: 'link_drop', duration: kind === 'serial' ? '4500ms' : '2s' });
      await waitFor(async () => (await gw.get(`/api/devices/${dev}`)).body.link === 'lost', { timeoutMs: 15_000, message: 'link lost' });
      const r = await command({ verb: 'SET', args: ['QB', 140] });
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ error: 'link_lost' });
      await waitFor(async () => (await gw.get(`/api/devices/${dev}`)).body.link === 'connected', { timeoutMs: 20_000, message: 'link back' });
      expect(sim.consoles[0].setpoints.QB).toBe(150);
      const rows = await audit();
      expect(rows.filter((a) => a.action === 'command.sent')).toHaveLength(sentBefore);
      expect(rows.filter((a) => a.action === 'command.requested' && a.detail.refusal === 'link_lost').map((a) => a.detail.args))
        .toEqual([['QB', 140]]);
    });

    it('audit verify passes on the journal, and names the record an attacker edited', async () => {
      expect((await runCli(['audit', 'verify', '--data-dir', dataDir])).code).toBe(0); // while the gateway runs
      const target = trailOf(await audit(), ids.set)[0];
      await sim.stop();
      await gw.stop();
      const intact = await runCli(['audit', 'verify', '--data-dir', dataDir]);
      expect(intact.code, intact.stderr).toBe(0);
      expect(intact.stdout).toMatch(/intact/);
      // The attacker lifts the append-only trigger and makes the SET look like 250 mL/min was asked for.
      const db = new Database(join(dataDir, 'journal.sqlite'));
      try {
        db.exec('DROP TRIGGER audit_no_update');
        const changed = db.prepare("UPDATE audit SET detail = json_replace(detail, '$.args[1]', 250) WHERE id = ?").run(target.id);
        expect(changed.changes).toBe(1);
      } finally {
        db.close();
      }
      const broken = await runCli(['audit', 'verify', '--data-dir', dataDir]);
      expect(broken.code).toBe(1);
      expect(broken.stdout).toMatch(new RegExp(`BROKEN at record #${target.id}\\b`));
    });
  });
}

controlThrough('serial', 'MSC-0501');
controlThrough('mqtt', 'MSC-0601');
