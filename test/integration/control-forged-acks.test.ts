/**
 * Forged and contradicting ACKs on a real mosquitto: the gateway, the simulator and a second MQTT client (the
 * attacker) that may publish on the console's `ack` topic, as a broker without per-topic ACLs allows.
 * 1. The attacker floods REJ answers for cmd_ids guessed the way the gateway used to make them (the counter
 *    after an id seen before): the command still gets the console's own answer, and the flood is counted,
 *    audited a bounded number of times and alarmed (ACK_UNEXPECTED).
 * 2. The attacker also reads the `cmd` topic and answers every command before or right after the console with a
 *    different result: the outcome is `conflict` over HTTP, over the live stream and in the audit trail.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DEV = 'MSC-0701';
const SESSION = 'S-ACK-1';
const ACK_TOPIC = `msc/v1/${DEV}/ack`;
const CMD_TOPIC = `msc/v1/${DEV}/cmd`;

interface AuditRow { id: number; user: string; action: string; outcome: string; device: string | null; detail: Record<string, any> }

describe('forged and contradicting ACKs over MQTT', () => {
  let broker: MosquittoBroker;
  let sim: Simulator;
  let gw: TestGateway;
  let attacker: MqttClient;

  beforeAll(async () => {
    broker = await startMosquitto();
    sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEV], autoRun: { sessionId: SESSION },
      phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 500 }, rate: 10,
    });
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: `gw-acks-${process.pid}` } });
    attacker = await connectAsync(broker.url, { clientId: `attacker-${process.pid}`, reconnectPeriod: 0 });
    await waitFor(async () => {
      const d = (await gw.get(`/api/devices/${DEV}`)).body;
      return d.state === 'RUNNING' && d.link === 'connected';
    }, { timeoutMs: 20_000, message: 'console RUNNING in the gateway' });
  }, 30_000);

  afterAll(async () => {
    await attacker?.endAsync(true);
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
  });

  const command = (body: unknown) => gw.post(`/api/devices/${DEV}/commands`, body);
  const audit = async (): Promise<AuditRow[]> => (await gw.get<{ records: AuditRow[] }>('/api/audit', gw.tokens.engineer)).body.records;
  const metric = async (kind: string): Promise<number> => {
    const text = (await gw.get<string>('/metrics')).body;
    const m = text.match(new RegExp(`^msc_ack_unexpected_total\\{device="${DEV}",kind="${kind}"\\} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  const forge = (id: string, result: string) =>
    attacker.publishAsync(ACK_TOPIC, JSON.stringify({ id, result, detail: 'forged' }), { qos: 1 });

  it('a flood of REJ for guessed cmd_ids: RESUME still gets the console\'s OK; counted, audited once, alarmed', async () => {
    const paused = await command({ verb: 'PAUSE', args: [], reason: 'before the attack' });
    expect(paused.body).toMatchObject({ result: 'OK' });
    await waitFor(() => sim.consoles[0].state === 'PAUSED');
    // The ids that would follow the one the attacker saw (gw8r0005 -> gw8r0006, ...) under the old scheme.
    const seen: string = paused.body.cmdId;
    const base = parseInt(seen.slice(4), 36);
    const guesses = Array.from({ length: 10 }, (_, i) => seen.slice(0, 4) + (base + 1 + i).toString(36).padStart(4, '0').slice(-4));

    // The console takes 300 ms to answer (the ICD allows 500): the flood has time to answer first.
    const console0 = sim.consoles[0];
    const receive = console0.receive.bind(console0);
    console0.receive = (d) => void setTimeout(() => receive(d), 300);
    let flooding = true;
    let published = 0;
    const flood = (async () => {
      const until = Date.now() + 5_000;
      while (flooding && Date.now() < until) {
        for (const g of guesses) await forge(g, 'REJ');
        published += guesses.length;
      }
    })();
    try {
      await waitFor(() => published > 0, { message: 'the flood is on' });
      const r = await command({ verb: 'RESUME', args: [], reason: 'under attack' });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ result: 'OK', tries: 1 });
      expect(guesses).not.toContain(r.body.cmdId);
    } finally {
      flooding = false;
      await flood;
      console0.receive = receive;
    }
    expect(console0.state).toBe('RUNNING');
    await waitFor(async () => (await metric('unknown')) === published, { message: `all ${published} forged ACKs counted` });
    expect(published).toBeGreaterThan(10);

    const rows = await audit();
    expect(rows.filter((a) => a.action === 'command.rejected')).toEqual([]);
    const flagged = rows.filter((a) => a.action === 'command.ack_unknown');
    // One record at once; the rest of the minute goes into one summary record when the minute ends.
    expect(flagged).toEqual([expect.objectContaining({ user: 'gateway', device: DEV, outcome: 'unknown' })]);
    expect(flagged[0].detail).toMatchObject({ count: 1, sample: { result: 'REJ', reply: 'forged' } });
    expect(guesses).toContain(flagged[0].detail.sample.cmdId);

    const alarms = (await gw.get<{ alarms: any[] }>(`/api/alarms?device=${DEV}`)).body.alarms;
    expect(alarms).toContainEqual(expect.objectContaining({
      id: `${DEV}:ACK_UNEXPECTED`, rule: 'ACK_UNEXPECTED', priority: 'MEDIUM', active: true, source: 'technical',
    }));
  }, 30_000);

  it('an attacker who reads the cmd topic answers differently: the outcome is conflict (HTTP, live stream, audit)', async () => {
    // Answers every command with REJ as soon as it sees it: the console answers OK at about the same time.
    await attacker.subscribeAsync(CMD_TOPIC, { qos: 1 });
    const onCmd = (topic: string, payload: Buffer) => {
      if (topic !== CMD_TOPIC) return;
      const { id } = JSON.parse(payload.toString()) as { id: string };
      void forge(id, 'REJ');
    };
    attacker.on('message', onCmd);
    const ws = new WebSocket(gw.url.replace('http', 'ws') + '/ws', ['msc.v1', `bearer.${gw.tokens.operator}`]);
    const messages: any[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    try {
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      const r = await command({ verb: 'PAUSE', args: [], reason: 'conflict test' });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ result: 'conflict', tries: 1 });
      expect(r.body.detail).toMatch(/conflicting answers from the console: .*verify its state/);
      // What the console really did: the gateway said "verify", and indeed it paused.
      expect(sim.consoles[0].state).toBe('PAUSED');

      ws.send(JSON.stringify({ type: 'command', id: 'c1', device: DEV, verb: 'RESUME', args: [] }));
      const res = await waitFor(() => messages.find((m) => m.type === 'commandResult' && m.id === 'c1'), { message: 'commandResult c1' });
      expect(res).toMatchObject({ status: 200, result: 'conflict' });
      expect(sim.consoles[0].state).toBe('RUNNING');

      const rows = await audit();
      for (const cmdId of [r.body.cmdId, res.cmdId]) {
        const trail = rows.filter((a) => a.detail.cmdId === cmdId).map((a) => [a.action, a.outcome]);
        expect(trail).toEqual([['command.requested', 'accepted'], ['command.sent', 'sent'], ['command.conflict', 'conflict']]);
      }
      expect(rows.filter((a) => a.action === 'command.ack_conflict')).toEqual([
        expect.objectContaining({ user: 'gateway', device: DEV, outcome: 'conflict' }),
      ]);
      expect(await metric('conflict')).toBe(2);
      const text = (await gw.get<string>('/metrics')).body;
      expect(text).toMatch(/^msc_commands_total\{outcome="conflict"\} 2$/m);
    } finally {
      attacker.off('message', onCmd);
      ws.close();
    }
  }, 30_000);
});
