/**
 * The simulator on a real socat pty pair, read from the gateway end with serialport + LineSplitter +
 * decodeLine, exactly as a gateway would.
 */
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../../src/protocol/lineSplitter.js';
import { decodeLine, encodeCommand } from '../../src/protocol/serial.js';
import type { LineResult } from '../../src/protocol/serial.js';
import type { Command, DeviceFrame, Discard } from '../../src/protocol/types.js';
import { createPtyPair, startSimulator } from '../../device-sim/src/index.js';
import type { Simulator } from '../../device-sim/src/index.js';
import type { PtyPair } from '../../device-sim/src/pty.js';
import { waitFor } from '../helpers/waitFor.js';

interface GatewayEnd {
  results: LineResult[];
  frames(): DeviceFrame[];
  discards(): Discard[];
  send(cmd: Command): void;
  write(raw: string): void;
  close(): Promise<void>;
}

async function openGatewayEnd(path: string): Promise<GatewayEnd> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const results: LineResult[] = [];
  const splitter = new LineSplitter();
  port.pipe(splitter);
  splitter.on('data', (out: SplitterOutput) => {
    if (out.kind === 'line') results.push(...decodeLine(out.line));
    else results.push({ type: 'discard', reason: 'too_long', raw: '', detail: `${out.bytes} bytes` });
  });
  return {
    results,
    frames: () => results.filter((r): r is DeviceFrame => r.type !== 'discard'),
    discards: () => results.filter((r): r is Discard => r.type === 'discard'),
    send: (cmd) => port.write(encodeCommand(cmd)),
    write: (raw) => port.write(raw, 'latin1'),
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

const seqOf = (f: DeviceFrame): number | null => ('seq' in f ? f.seq : null);

describe('simulator over a socat pty', () => {
  let sim: Simulator | null = null;
  let pair: PtyPair | null = null;
  let gw: GatewayEnd | null = null;

  afterEach(async () => {
    await sim?.stop();
    await gw?.close();
    await pair?.close();
    sim = null;
    gw = null;
    pair = null;
  });

  it('sends HELLO first, then S and T frames with valid CRCs, exactly what it recorded', async () => {
    pair = await createPtyPair();
    gw = await openGatewayEnd(pair.gatewayPath);
    sim = await startSimulator({ transport: 'serial', serialPath: pair.devicePath, seed: 3, record: true, autoRun: true });
    const g = gw;
    await waitFor(() => g.frames().filter((f) => f.type === 'T').length >= 20, { message: '20 T frames' });
    const frames = g.frames();
    expect(frames[0]).toMatchObject({ type: 'HELLO', deviceId: 'MSC-0001', icd: 1 });
    expect(frames[1]).toMatchObject({ type: 'S', seq: 0, state: 'IDLE' });
    expect(g.discards()).toEqual([]);
    const seqs = frames.map(seqOf).filter((s): s is number => s !== null);
    expect(seqs).toEqual(seqs.map((_, i) => i));

    await sim.stop();
    const sent = sim.recorded('MSC-0001').filter((r) => r.delivery === 'sent').map((r) => r.frame);
    await waitFor(() => g.frames().length >= sent.length, { message: 'all sent frames received' });
    expect(g.frames()).toEqual(sent);
    expect(sim.stats().perDevice['MSC-0001']).toMatchObject({ sent: sent.length, dropped: 0, corrupted: 0 });
  });

  it('with its own pty, counts the line as plugged in only while the gateway holds its end open', async () => {
    sim = await startSimulator({ transport: 'serial', pty: true, seed: 6, record: true, rate: 20 });
    const s = sim;
    await waitFor(() => (s.consoles[0].lastSeq ?? 0) >= 10, { message: 'console producing' });
    let g = await openGatewayEnd(s.gatewayPath ?? '');
    await waitFor(() => g.frames().filter((f) => f.type === 'T').length >= 10, { message: 'frames once opened' });
    // Frames before the gateway opened were never written (dropped); from the open on, exactly what was sent.
    const sentSoFar = () => s.recorded('MSC-0001').filter((r) => r.delivery === 'sent').map((r) => r.frame);
    await waitFor(() => g.frames().length >= sentSoFar().length);
    const first = g.frames();
    expect(first[0]).toMatchObject({ type: 'HELLO', deviceId: 'MSC-0001' });
    expect(first).toEqual(sentSoFar().slice(0, first.length));
    expect(s.stats().perDevice['MSC-0001'].dropped).toBeGreaterThan(5);

    await g.close();
    const closedAt = s.recorded('MSC-0001').length;
    await waitFor(() => s.recorded('MSC-0001').at(-1)?.delivery === 'dropped', { message: 'frames dropped while unplugged' });
    gw = g = await openGatewayEnd(s.gatewayPath ?? '');
    await waitFor(() => g.frames().filter((f) => f.type === 'T').length >= 10, { message: 'frames after reopening' });
    expect(g.frames()[0]).toMatchObject({ type: 'HELLO' });
    // Frames written in the moment before the watcher saw the gateway close may vanish in the pty;
    // everything from the new HELLO on arrives.
    await s.stop();
    const sentSinceClose = s.recorded('MSC-0001').slice(closedAt).filter((r) => r.delivery === 'sent').map((r) => r.frame);
    const expected = sentSinceClose.slice(sentSinceClose.findIndex((f) => f.type === 'HELLO'));
    await waitFor(() => g.frames().length >= expected.length);
    expect(g.frames()).toEqual(expected);
  });

  it('answers $CMD with $ACK: OK, REJ, ERR, and stays silent on a bad CRC', async () => {
    sim = await startSimulator({ transport: 'serial', pty: true, seed: 4 });
    expect(sim.gatewayPath).toBeTruthy();
    gw = await openGatewayEnd(sim.gatewayPath ?? '');
    const g = gw;
    const acks = () => g.frames().filter((f) => f.type === 'ACK');

    g.send({ cmdId: 'c1', verb: 'PRIME', args: [] });
    await waitFor(() => acks().length === 1, { message: 'ACK c1' });
    expect(acks()[0]).toEqual({ type: 'ACK', cmdId: 'c1', result: 'OK', detail: '' });
    await waitFor(() => g.frames().some((f) => f.type === 'S' && f.state === 'SELFTEST'), { message: 'S SELFTEST' });

    // A line noise hit on the command: the device cannot trust it and stays silent (the sender retries).
    g.write(encodeCommand({ cmdId: 'c2', verb: 'SET', args: ['QB', 160] }).replace(/\*[0-9A-F]{4}/, '*0000'));
    g.send({ cmdId: 'c3', verb: 'START', args: ['S-1'] });
    g.send({ cmdId: 'c4', verb: 'SET', args: ['QB'] });
    await waitFor(() => acks().length >= 3, { message: 'ACK c3 and c4' });
    expect(acks().map((a) => a.type === 'ACK' && a.cmdId)).toEqual(['c1', 'c3', 'c4']);
    expect(acks()[1]).toEqual({ type: 'ACK', cmdId: 'c3', result: 'REJ', detail: 'state SELFTEST does not accept START' });
    expect(acks()[2]).toMatchObject({ type: 'ACK', cmdId: 'c4', result: 'ERR' });
    expect(sim.consoles[0].setpoints.QB).toBe(150);
    expect(sim.stats().perDevice['MSC-0001'].commandsDiscarded).toBe(1);
  });
});

describe('line faults over a socat pty', () => {
  let sim: Simulator | null = null;
  let pair: PtyPair | null = null;
  let gw: GatewayEnd | null = null;

  afterEach(async () => {
    await sim?.stop();
    await gw?.close();
    await pair?.close();
    sim = null;
    gw = null;
    pair = null;
  });

  it('bad CRCs, garbage and a link drop reach the gateway as discards, seq gaps and a new HELLO', async () => {
    pair = await createPtyPair();
    gw = await openGatewayEnd(pair.gatewayPath);
    sim = await startSimulator({ transport: 'serial', serialPath: pair.devicePath, seed: 5, record: true, rate: 20 });
    const g = gw;
    const s = sim;
    const tCount = () => g.frames().filter((f) => f.type === 'T').length;
    await waitFor(() => tCount() >= 5);

    s.apply({ action: 'bad_crc', params: { count: 3 } });
    await waitFor(() => g.discards().filter((d) => d.reason === 'bad_crc').length === 3, { message: '3 bad_crc discards' });
    s.apply({ action: 'garbage_bytes', params: { count: 300 } });
    s.apply({ action: 'garbage_bytes', params: { count: 40, mode: 'partial' } });
    const before = tCount();
    await waitFor(() => tCount() >= before + 5, { message: 'frames decode again after the garbage' });

    const hellos = () => g.frames().filter((f) => f.type === 'HELLO').length;
    s.apply({ action: 'link_drop', duration: '1s' });
    await waitFor(() => hellos() === 2, { message: 'HELLO after the link reopened' });
    const after = tCount();
    await waitFor(() => tCount() >= after + 5);
    await s.stop();

    const rec = s.recorded('MSC-0001');
    const sent = rec.filter((r) => r.delivery === 'sent').map((r) => r.frame);
    await waitFor(() => g.frames().length >= sent.length, { message: 'every sent frame arrived' });
    expect(g.frames()).toEqual(sent);
    const stats = s.stats().perDevice['MSC-0001'];
    expect(stats.corrupted).toBe(3);
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.linkDrops).toBe(1);
    expect(stats.garbageBytes).toBeGreaterThan(300);
    // Every seq the gateway never saw is one the simulator corrupted or dropped: gaps are exact.
    const seen = new Set(g.frames().map(seqOf).filter((q) => q !== null));
    const missing = rec.filter((r) => r.delivery !== 'sent').map((r) => seqOf(r.frame)).filter((q) => q !== null);
    expect(missing.length).toBeGreaterThan(3);
    for (const q of missing) expect(seen.has(q)).toBe(false);
    const nonFrameDiscards = g.discards().filter((d) => d.reason !== 'bad_crc');
    expect(nonFrameDiscards.length).toBeGreaterThan(0);
  });
});
