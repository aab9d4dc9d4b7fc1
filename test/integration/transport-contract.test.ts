/**
 * One contract, two transports: whatever carries the device, frames arrive decoded and in order,
 * bad input is counted, commands reach the device and a vanished device is reported. Serial runs over a real
 * socat pty pair, MQTT over a real mosquitto; the "device" writes raw ICD lines / payloads by hand so the
 * test does not lean on the codec's encoders. Serial-only scenarios (the pty recreated) are at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IngestSink } from '../../src/model/types.js';
import { crcHex } from '../../src/protocol/crc.js';
import { decodeCommandLine } from '../../src/protocol/serial.js';
import type { Command } from '../../src/protocol/types.js';
import { MqttTransport } from '../../src/transports/mqtt.js';
import { SerialTransport } from '../../src/transports/serial.js';
import type { Transport, TransportLogger } from '../../src/transports/types.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { recordingSink } from '../helpers/recordingSink.js';

const DEVICE = 'MSC-0001';
const T0 = 1764061200000;

const quiet: TransportLogger = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet };

/** What the contract needs from a medium: a device it can make talk, and the transport under test. */
interface Harness {
  start(sink: IngestSink): Promise<Transport>;
  hello(id: string): Promise<void>;
  telemetry(id: string, seqs: number[]): Promise<void>;
  /** One input that is not a frame (a bad CRC; an invalid JSON payload). */
  garbage(id: string): Promise<void>;
  commandsReceived(): Command[];
  /** The device vanishes without a word (cable or pty gone; MQTT connection dropped, last will fires). */
  vanish(id: string): Promise<void>;
  stop(): Promise<void>;
}

function transportContract(name: string, makeHarness: () => Harness): void {
  describe(`transport contract: ${name}`, () => {
    let h: Harness;
    let rec: ReturnType<typeof recordingSink>;
    let transport: Transport;

    beforeEach(async () => {
      rec = recordingSink();
      h = makeHarness();
      transport = await h.start(rec.sink);
      await waitFor(() => transport.status().up, { message: `${name} transport up` });
    });
    afterEach(async () => {
      await h.stop();
    });

    it('hands frames over decoded, in order, attributed to the device', async () => {
      await h.hello(DEVICE);
      const seqs = Array.from({ length: 50 }, (_, i) => 100 + i);
      await h.telemetry(DEVICE, seqs);
      await waitFor(() => rec.frames(DEVICE).filter((f) => f.type === 'T').length === 50, { message: '50 telemetry frames' });
      const got = rec.frames(DEVICE);
      expect(got.find((f) => f.type === 'HELLO')).toMatchObject({ deviceId: DEVICE, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN1' });
      expect(got.flatMap((f) => (f.type === 'T' ? [f.seq] : []))).toEqual(seqs);
      expect(got.find((f) => f.type === 'T')).toEqual({ type: 'T', seq: 100, t: T0 + 100, v: { QB: 150.5, PV: null } });
      expect(transport.status().up).toBe(true);
    });

    it('counts input that is not a frame as a discard and carries on', async () => {
      await h.hello(DEVICE);
      await h.telemetry(DEVICE, [1]);
      await h.garbage(DEVICE);
      await h.telemetry(DEVICE, [2]);
      await waitFor(() => rec.frames(DEVICE).some((f) => f.type === 'T' && f.seq === 2));
      const discards = rec.calls.filter((c) => c.op === 'discard');
      expect(discards).toHaveLength(1);
      expect(discards[0]).toMatchObject({ deviceId: DEVICE, d: { type: 'discard' } });
    });

    it('delivers a command to the device through the DeviceLink it handed over', async () => {
      await h.hello(DEVICE);
      const link = (await waitFor(() => rec.link(DEVICE)))!;
      expect(link.kind).toBe(transport.kind);
      expect(link.source).toBe(transport.status().source);
      const cmd: Command = { cmdId: 'c17', verb: 'SET', args: ['QB', 160] };
      await link.send(cmd);
      const got = await waitFor(() => h.commandsReceived()[0], { message: 'device received the command' });
      expect({ ...got, args: got.args.map(String) }).toEqual({ cmdId: 'c17', verb: 'SET', args: ['QB', '160'] });
    });

    it('reports the link down when the device vanishes', async () => {
      await h.hello(DEVICE);
      await h.telemetry(DEVICE, [1]);
      await waitFor(() => rec.frames(DEVICE).length >= 2);
      await h.vanish(DEVICE);
      const down = await waitFor(() => rec.calls.find((c) => c.op === 'linkDown'), { message: 'linkDown' });
      expect(down).toMatchObject({ op: 'linkDown', deviceId: DEVICE });
    });
  });
}

// ---------------------------------------------------------------------------------------------- serial

const serialLine = (body: string) => `$${body}*${crcHex(body)}\r\n`;

/** A socat pty pair in a temp dir: `dev` is the console's end, `gw` the gateway's. */
class PtyPair {
  readonly dir = mkdtempSync(join(tmpdir(), 'msc-pty-'));
  readonly devPath = join(this.dir, 'dev');
  readonly gwPath = join(this.dir, 'gw');
  private proc: ChildProcess | null = null;

  async up(): Promise<void> {
    this.proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.devPath}`, `pty,raw,echo=0,link=${this.gwPath}`], { stdio: 'ignore' });
    await waitFor(() => existsSync(this.devPath) && existsSync(this.gwPath), { message: 'socat ptys' });
  }

  async down(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  async remove(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The console end of the pty: writes ICD lines, reads the commands the gateway sends. */
class SerialDevice {
  readonly commands: Command[] = [];
  private port: SerialPort | null = null;

  async open(path: string): Promise<void> {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
    port.on('error', () => undefined); // the pty vanishing under us is part of the test
    let buffered = '';
    port.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const decoded = decodeCommandLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (decoded.type === 'command') this.commands.push(decoded.cmd);
      }
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    this.port = port;
  }

  write(text: string): Promise<void> {
    const port = this.port!;
    return new Promise((resolve, reject) => port.write(text, (err) => (err ? reject(err) : port.drain(() => resolve()))));
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}

function serialHarness(): Harness & { pty: PtyPair; device: SerialDevice; transport: () => SerialTransport } {
  const pty = new PtyPair();
  const device = new SerialDevice();
  let transport: SerialTransport | null = null;
  return {
    pty, device,
    transport: () => transport!,
    async start(sink) {
      await pty.up();
      await device.open(pty.devPath);
      transport = new SerialTransport({ path: pty.gwPath, sink, logger: quiet, initialBackoffMs: 50, maxBackoffMs: 200 });
      await transport.start();
      return transport;
    },
    hello: (id) => device.write(serialLine(`HELLO,${id},MSC-ALS 2,3.4.1,1,SN1`)),
    telemetry: (_id, seqs) => device.write(seqs.map((s) => serialLine(`T,${s},${T0 + s},QB=150.5,PV=!`)).join('')),
    garbage: () => device.write('$T,7,1764061200007,QB=1*0000\r\n'),
    commandsReceived: () => device.commands,
    vanish: async () => {
      await device.close();
      await pty.down();
    },
    async stop() {
      await transport?.stop();
      await device.close();
      await pty.remove();
    },
  };
}

// ------------------------------------------------------------------------------------------------ mqtt

const PREFIX = 'msc/test';

function mqttHarness(): Harness {
  let broker: Awaited<ReturnType<typeof startMosquitto>> | null = null;
  let transport: MqttTransport | null = null;
  const devices = new Map<string, MqttClient>();
  const commands: Command[] = [];
  const device = async (id: string): Promise<MqttClient> => {
    let c = devices.get(id);
    if (!c) {
      c = await connectAsync(broker!.url, {
        clientId: `device-${id}`, reconnectPeriod: 0,
        will: { topic: `${PREFIX}/${id}/status`, payload: Buffer.from('offline'), qos: 1, retain: true },
      });
      c.on('message', (_topic, payload) => {
        const m = JSON.parse(payload.toString()) as { id: string; verb: Command['verb']; args: Command['args'] };
        commands.push({ cmdId: m.id, verb: m.verb, args: m.args });
      });
      await c.subscribeAsync(`${PREFIX}/${id}/cmd`, { qos: 1 });
      devices.set(id, c);
    }
    return c;
  };
  const pub = async (id: string, kind: string, payload: string, retain = false) => {
    await (await device(id)).publishAsync(`${PREFIX}/${id}/${kind}`, payload, { qos: 1, retain });
  };
  return {
    async start(sink) {
      broker = await startMosquitto();
      transport = new MqttTransport({ url: broker.url, prefix: PREFIX, clientId: `gw-contract-${process.pid}`, sink, logger: quiet });
      await transport.start();
      return transport;
    },
    async hello(id) {
      await pub(id, 'hello', JSON.stringify({ deviceId: id, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN1' }), true);
      await pub(id, 'status', 'online', true);
    },
    async telemetry(id, seqs) {
      for (const seq of seqs) await pub(id, 'telemetry', JSON.stringify({ seq, t: T0 + seq, v: { QB: 150.5, PV: null } }));
    },
    garbage: (id) => pub(id, 'telemetry', '{"seq": 7, "t": '),
    commandsReceived: () => commands,
    async vanish(id) {
      devices.get(id)?.stream.destroy(); // no DISCONNECT: the broker publishes the last will
      devices.delete(id);
    },
    async stop() {
      await transport?.stop();
      for (const c of devices.values()) await c.endAsync(true);
      await broker?.stop();
    },
  };
}

transportContract('serial over a socat pty', serialHarness);
transportContract('MQTT over mosquitto', mqttHarness);

describe('serial transport over a socat pty', () => {
  let h: ReturnType<typeof serialHarness>;
  afterEach(async () => h.stop());

  it('reopens when the pty is recreated at the same path and takes data again after the HELLO', async () => {
    h = serialHarness();
    const rec = recordingSink();
    const transport = await h.start(rec.sink);
    await waitFor(() => transport.status().up);
    await h.hello(DEVICE);
    await h.telemetry(DEVICE, [1, 2]);
    await waitFor(() => rec.frames(DEVICE).length === 3);

    await h.vanish(DEVICE);
    await waitFor(() => !transport.status().up && rec.calls.some((c) => c.op === 'linkDown'), { message: 'port lost' });
    const link = rec.link(DEVICE)!;
    await expect(link.send({ cmdId: 'c1', verb: 'PAUSE', args: [] })).rejects.toThrow(/not open/);

    await h.pty.up();
    await h.device.open(h.pty.devPath);
    await waitFor(() => transport.status().up, { message: 'port reopened' });
    expect(transport.status().reconnects).toBe(1);
    // ICD §1: the console says HELLO after the link is reopened; then frames flow and commands go out again.
    await h.hello(DEVICE);
    await h.telemetry(DEVICE, [3]);
    await waitFor(() => rec.frames(DEVICE).some((f) => f.type === 'T' && f.seq === 3), { message: 'data after reopen' });
    expect(rec.calls.filter((c) => c.op === 'reconnected')).toEqual([{ op: 'reconnected', deviceId: DEVICE }]);
    await link.send({ cmdId: 'c2', verb: 'PAUSE', args: [] });
    await waitFor(() => h.device.commands.some((c) => c.cmdId === 'c2'));
  });

  it('asks a silent console who it is with CMD ID and attributes what it already sent', async () => {
    h = serialHarness();
    const rec = recordingSink();
    const transport = await h.start(rec.sink);
    await waitFor(() => transport.status().up);
    await h.telemetry(DEVICE, [41, 42]);
    const ask = (await waitFor(() => h.device.commands.find((c) => c.verb === 'ID'), { message: 'CMD ID within ~2 s' }))!;
    expect(rec.calls.filter((c) => c.op === 'ingest')).toHaveLength(0);
    await h.device.write(serialLine(`ACK,${ask.cmdId},OK,`));
    await h.hello(DEVICE);
    await waitFor(() => rec.frames(DEVICE).length === 4);
    expect(rec.frames(DEVICE).map((f) => f.type)).toEqual(['T', 'T', 'ACK', 'HELLO']);
  });
});
