/**
 * SerialTransport against @serialport/binding-mock, wrapped so a test can pull the cable (reads fail with
 * EIO, the path disappears) and plug it back. Fake timers drive the HELLO timeout and the reopen backoff.
 */
import type { OpenOptions } from '@serialport/stream';
import { SerialPortMock } from 'serialport';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { crcHex } from '../../../src/protocol/crc.js';
import { decodeCommandLine } from '../../../src/protocol/serial.js';
import { SerialTransport } from '../../../src/transports/serial.js';
import { capturingLogger, recordingSink, type SinkCall } from '../../helpers/recordingSink.js';

// @serialport/binding-mock through `serialport`: its own package.json hides its types from NodeNext.
const MockBinding = SerialPortMock.binding;
type MockPortBinding = Awaited<ReturnType<typeof MockBinding.open>>;

const PATH = '/dev/ttyMOCK0';
const line = (body: string) => `$${body}*${crcHex(body)}\r\n`;
const hello = (id: string) => line(`HELLO,${id},MSC-ALS 2,3.4.1,1,SN1`);
const telemetry = (seq: number) => line(`T,${seq},${1764061200000 + seq * 100},QB=150.0,PV=!`);

/** MockBinding plus a cable: pull() fails reads like a vanished USB adapter and removes the path. */
function cabledBinding() {
  let current: MockPortBinding | null = null;
  let pulled: ((err: Error) => void) | null = null;
  const opens: number[] = [];
  const binding = {
    ...MockBinding,
    async open(options: Parameters<typeof MockBinding.open>[0]) {
      opens.push(Date.now());
      const inner = await MockBinding.open(options);
      current = inner;
      const cut = new Promise<never>((_, reject) => { pulled = reject; });
      cut.catch(() => undefined);
      return new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'read') {
            return (buf: Buffer, off: number, len: number) => Promise.race([target.read(buf, off, len), cut]);
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  } as unknown as OpenOptions['binding'];
  return {
    binding,
    opens,
    port: () => current!,
    emit: (text: string) => current!.emitData(Buffer.from(text, 'latin1')),
    written: () => (current?.recording ?? Buffer.alloc(0)).toString('latin1'),
    pull: () => {
      MockBinding.reset();
      const err = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      pulled?.(err);
    },
    plug: () => MockBinding.createPort(PATH, { record: true }),
  };
}

/** Lets nextTick/stream work run without moving the fake clock. */
async function settle(cond: () => boolean = () => true, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setImmediate(r));
    if (cond()) return;
  }
  if (!cond()) throw new Error('condition not reached');
}

describe('SerialTransport', () => {
  let t: SerialTransport | null = null;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    MockBinding.reset();
  });
  afterEach(async () => {
    await t?.stop();
    t = null;
    vi.useRealTimers();
    MockBinding.reset();
  });

  function setup(extra: Partial<ConstructorParameters<typeof SerialTransport>[0]> = {}) {
    const cable = cabledBinding();
    const s = recordingSink();
    const log = capturingLogger();
    t = new SerialTransport({ path: PATH, sink: s.sink, logger: log.logger, binding: cable.binding, random: () => 0, ...extra });
    return { cable, ...s, log, t };
  }

  it('identifies the console from HELLO and hands frames over in order, attributed to it', async () => {
    const { cable, calls, frames, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001') + telemetry(1) + telemetry(2) + telemetry(3));
    await settle(() => frames().length === 4);
    expect(frames('MSC-0001').map((f) => (f.type === 'T' ? f.seq : f.type))).toEqual(['HELLO', 1, 2, 3]);
    const first = calls.find((c) => c.op === 'ingest');
    expect(first && first.op === 'ingest' && { kind: first.link.kind, source: first.link.source }).toEqual({ kind: 'serial', source: PATH });
    expect(t.identity()).toBe('MSC-0001');
    expect(t.status()).toMatchObject({ kind: 'serial', source: PATH, up: true, reconnects: 0, lastError: null });
    // A frame split across reads is still one frame.
    const split = telemetry(4);
    cable.emit(split.slice(0, 10));
    await settle();
    cable.emit(split.slice(10));
    await settle(() => frames().length === 5);
    expect(frames().at(-1)).toMatchObject({ type: 'T', seq: 4, v: { QB: 150, PV: null } });
  });

  it('asks with CMD ID 2 s after opening, re-asks with backoff to 10 s, each time with a fresh cmd_id', async () => {
    const { cable, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    const commands = () => cable.written().split('\r\n').filter(Boolean).map((l) => decodeCommandLine(l));
    await vi.advanceTimersByTimeAsync(1999);
    expect(commands()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await settle(() => commands().length === 1);
    const sendTimes = [2000];
    let elapsed = 2000;
    for (const gap of [2000, 4000, 8000, 10_000, 10_000]) {
      await vi.advanceTimersByTimeAsync(gap - 1);
      expect(commands()).toHaveLength(sendTimes.length);
      await vi.advanceTimersByTimeAsync(1);
      await settle(() => commands().length === sendTimes.length + 1);
      elapsed += gap;
      sendTimes.push(elapsed);
    }
    const ids = commands().map((c) => (c.type === 'command' ? c.cmd : null));
    expect(ids.every((c) => c?.verb === 'ID' && c.args.length === 0 && /^id[0-9a-z]{6}$/.test(c.cmdId))).toBe(true);
    expect(new Set(ids.map((c) => c?.cmdId)).size).toBe(ids.length);
    expect(t.status().detail).toMatch(/waiting for HELLO \(CMD ID sent 6 times\)/);
  });

  it('keeps frames before HELLO and hands them over in arrival order with the HELLO; CMD ID stops', async () => {
    const { cable, calls, frames, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(telemetry(7) + telemetry(8));
    await settle();
    expect(frames()).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    await settle(() => cable.written().includes('CMD'));
    const sent = decodeCommandLine(cable.written().trim());
    const cmdId = sent.type === 'command' ? sent.cmd.cmdId : 'x';
    // ICD §1: ACK then HELLO in reply to CMD ID.
    cable.emit(line(`ACK,${cmdId},OK,`) + hello('MSC-0002'));
    await settle(() => frames().length === 4);
    const ingests = calls.filter((c) => c.op === 'ingest');
    expect(ingests).toHaveLength(1);
    expect(ingests[0]).toMatchObject({ deviceId: 'MSC-0002' });
    expect(frames().map((f) => f.type)).toEqual(['T', 'T', 'ACK', 'HELLO']);
    const writtenBefore = cable.written();
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(cable.written()).toBe(writtenBefore);
  });

  it('keeps at most pendingLimit frames before identity and counts the overflow as discards', async () => {
    const { cable, calls, frames, t } = setup({ pendingLimit: 1000 });
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    let text = '';
    for (let seq = 0; seq < 1005; seq++) text += telemetry(seq);
    cable.emit(text);
    const discards = () => calls.filter((c) => c.op === 'discard');
    await settle(() => discards().length === 5, 2000);
    for (const c of discards()) {
      expect(c).toMatchObject({ deviceId: null, source: PATH, d: { type: 'discard', reason: 'malformed', detail: 'no identity yet (no HELLO): pending buffer full' } });
    }
    cable.emit(hello('MSC-0003'));
    await settle(() => frames().length === 1001);
    const seqs = frames().flatMap((f) => (f.type === 'T' ? [f.seq] : []));
    expect(seqs[0]).toBe(5);
    expect(seqs.at(-1)).toBe(1004);
  });

  it('reports bad lines as discards and keeps decoding the next line', async () => {
    const { cable, calls, frames, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001'));
    await settle(() => frames().length === 1);
    const good = telemetry(2);
    cable.emit(good.replace('QB=150.0', 'QB=150.1') + `${'X'.repeat(600)}\r\n` + '\x00\xff' + good);
    await settle(() => frames().length === 2);
    const reasons = calls.flatMap((c) => (c.op === 'discard' ? [[c.deviceId, c.d.reason]] : []));
    expect(reasons).toEqual([['MSC-0001', 'bad_crc'], ['MSC-0001', 'too_long'], ['MSC-0001', 'leading_garbage']]);
  });

  it('writes a command through the DeviceLink and rejects once the port is gone', async () => {
    const { cable, calls, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001'));
    await settle(() => calls.some((c) => c.op === 'ingest'));
    const link = (calls.find((c) => c.op === 'ingest') as Extract<SinkCall, { op: 'ingest' }>).link;
    await link.send({ cmdId: 'c17', verb: 'SET', args: ['QB', 160] });
    expect(cable.written()).toBe('$CMD,c17,SET,QB,160*86D1\r\n'); // ICD §3 example
    cable.pull();
    await settle(() => !t.status().up);
    await expect(link.send({ cmdId: 'c18', verb: 'PAUSE', args: [] })).rejects.toThrow(/port not open/);
  });

  it('reopens forever with capped backoff, logs once per state change, and waits for HELLO to confirm', async () => {
    const { cable, calls, frames, log, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001') + telemetry(1));
    await settle(() => frames().length === 2);
    const lossAt = Date.now();
    cable.pull();
    await settle(() => calls.some((c) => c.op === 'linkDown'));
    expect(calls.filter((c) => c.op === 'linkDown')).toEqual([
      { op: 'linkDown', deviceId: 'MSC-0001', reason: expect.stringMatching(/^serial port lost: .*EIO/) },
    ]);
    const opensBefore = cable.opens.length;
    // 250 ms doubling to 5 s (random() = 0: no jitter), then 5 s forever.
    const expected = [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000];
    for (const [i, gap] of expected.entries()) {
      await vi.advanceTimersByTimeAsync(gap);
      await settle(() => cable.opens.length > opensBefore + i);
    }
    const attempts = cable.opens.slice(opensBefore);
    expect(attempts.map((at, i) => at - (i === 0 ? lossAt : attempts[i - 1]))).toEqual(expected);
    const logged = log.lines.filter((l) => l.level !== 'debug').map((l) => l.msg);
    expect(logged.filter((m) => m.startsWith('serial port lost'))).toHaveLength(1);
    expect(logged.filter((m) => m.includes('still retrying'))).toHaveLength(1);
    expect(logged.filter((m) => m.startsWith('serial port still unavailable:'))).toHaveLength(1); // ENOENT-like, once
    expect(logged.length).toBeLessThanOrEqual(6);
    expect(t.status()).toMatchObject({ up: false, lastError: expect.stringMatching(/does not exist/) });

    cable.plug();
    await vi.advanceTimersByTimeAsync(5000);
    await settle(() => t.status().up);
    expect(log.lines.map((l) => l.msg)).toContain(`serial port reopened after ${expected.length + 1} tries`);
    expect(t.status().reconnects).toBe(1);
    // Frames after a reopen wait for the HELLO that says who is on the port.
    cable.emit(telemetry(2));
    await settle();
    expect(frames()).toHaveLength(2);
    expect(calls.some((c) => c.op === 'reconnected')).toBe(false);
    cable.emit(hello('MSC-0001') + telemetry(3));
    await settle(() => frames().length === 5);
    expect(calls.filter((c) => c.op === 'reconnected')).toEqual([{ op: 'reconnected', deviceId: 'MSC-0001' }]);
    expect(frames().slice(2).map((f) => (f.type === 'T' ? f.seq : f.type))).toEqual([2, 'HELLO', 3]);
  });

  it('treats a port missing at start like a lost one: no crash, opens when it appears', async () => {
    const { cable, frames, log, t } = setup();
    await t.start();
    await settle(() => cable.opens.length === 1);
    expect(t.status().up).toBe(false);
    await vi.advanceTimersByTimeAsync(250 + 500);
    await settle(() => cable.opens.length === 3);
    cable.plug();
    await vi.advanceTimersByTimeAsync(1000);
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001'));
    await settle(() => frames().length === 1);
    expect(log.lines.filter((l) => l.msg.startsWith('serial port unavailable'))).toHaveLength(1);
  });

  it('on a console swap reports the old device down and continues with the new one', async () => {
    const { cable, calls, frames, t } = setup();
    cable.plug();
    await t.start();
    await settle(() => t.status().up);
    cable.emit(hello('MSC-0001') + telemetry(1));
    await settle(() => frames().length === 2);
    const oldLink = (calls.find((c) => c.op === 'ingest') as Extract<SinkCall, { op: 'ingest' }>).link;
    cable.emit(hello('MSC-0009') + telemetry(0));
    await settle(() => frames('MSC-0009').length === 2);
    expect(calls.filter((c) => c.op === 'linkDown')).toEqual([
      { op: 'linkDown', deviceId: 'MSC-0001', reason: `console swapped: MSC-0009 now on ${PATH}` },
    ]);
    expect(frames('MSC-0001')).toHaveLength(2);
    // The old device's link must never write to the console that replaced it.
    await expect(oldLink.send({ cmdId: 'c1', verb: 'PAUSE', args: [] })).rejects.toThrow(/MSC-0001 is not on this port/);
    expect(cable.written()).not.toContain('PAUSE');
  });

  it('stop() closes the port, cancels retries and is safe twice', async () => {
    const { cable, t } = setup();
    await t.start();
    await settle(() => cable.opens.length === 1);
    await t.stop();
    await t.stop();
    cable.plug();
    await vi.advanceTimersByTimeAsync(60_000);
    await settle();
    expect(cable.opens).toHaveLength(1);
    expect(t.status()).toMatchObject({ up: false, detail: 'stopped' });

    const second = setup();
    second.cable.plug();
    await second.t.start();
    await settle(() => second.t.status().up);
    await second.t.stop();
    expect(second.cable.port().isOpen).toBe(false);
    await second.t.stop();
  });
});
