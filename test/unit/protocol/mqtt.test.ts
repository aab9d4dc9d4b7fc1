import { describe, expect, it } from 'vitest';
import {
  decodeMqttCommand, decodeMqttPayload, encodeMqttCommand, encodeMqttPayload, parseTopic,
} from '../../../src/protocol/mqtt.js';
import type { MqttKind } from '../../../src/protocol/mqtt.js';
import type { DeviceFrame } from '../../../src/protocol/types.js';

const DEV = 'MSC-0001';
const decode = (kind: MqttKind, payload: string | Buffer, dev = DEV) => decodeMqttPayload(kind, payload, dev);
const sample = (seq: number) => ({ seq, t: 1764061200100 + seq, v: { QB: 150.2, PV: null } });

describe('parseTopic (ICD §2)', () => {
  it.each([
    ['msc/v1', 'msc/v1/MSC-0001/telemetry', { deviceId: 'MSC-0001', kind: 'telemetry' }],
    ['msc/v1/', 'msc/v1/MSC-0001/status', { deviceId: 'MSC-0001', kind: 'status' }],
    ['site/a/msc', 'site/a/msc/D2/ack', { deviceId: 'D2', kind: 'ack' }],
  ])('%s + %s', (prefix, topic, expected) => {
    expect(parseTopic(prefix, topic)).toEqual(expected);
  });

  it.each([
    'msc/v2/MSC-0001/telemetry', 'msc/v1/MSC-0001/unknown', 'msc/v1/MSC-0001', 'msc/v1//telemetry',
    'msc/v1/a/b/telemetry', 'msc/v1/+/telemetry', 'msc/v1/#/telemetry', 'msc/v1x/D/telemetry',
  ])('rejects %s', (topic) => {
    expect(parseTopic('msc/v1', topic)).toBeNull();
  });
});

describe('decodeMqttPayload', () => {
  it('decodes one telemetry object, keeping unknown keys and null as a sensor fault', () => {
    const r = decode('telemetry', Buffer.from(JSON.stringify({ seq: 4294967295, t: 1, v: { QB: 150.2, PV: null, SpO2: 97 } })));
    expect(r).toStrictEqual({ frames: [{ type: 'T', seq: 4294967295, t: 1, v: { QB: 150.2, PV: null, SpO2: 97 } }], discards: [] });
  });

  it('keeps the valid elements of a batch and makes one schema discard per bad element', () => {
    const batch = [
      sample(1), { seq: -1, t: 1, v: {} }, sample(2), { seq: 3, t: 1, v: { QB: '150' } }, 42,
      { seq: 2 ** 32, t: 1, v: {} }, { seq: 5, t: 1.5, v: {} }, sample(3),
    ];
    const r = decode('telemetry', JSON.stringify(batch));
    expect(r.frames.map((f) => (f as { seq: number }).seq)).toEqual([1, 2, 3]);
    expect(r.discards).toHaveLength(5);
    expect(r.discards.every((d) => d.reason === 'schema')).toBe(true);
    expect(r.discards[0].detail).toMatch(/^\[1\] seq/);
  });

  it('accepts batches beyond 100 samples, validating each', () => {
    const batch = Array.from({ length: 250 }, (_, i) => sample(i));
    expect(decode('telemetry', JSON.stringify(batch)).frames).toHaveLength(250);
    expect(decode('telemetry', '[]')).toStrictEqual({ frames: [], discards: [] });
  });

  it('rejects channel keys that are not identifiers (incl. __proto__) and non-number values', () => {
    for (const v of ['{"__proto__":1}', '{"Q B":1}', '{"QB":true}', '{"QB":"1"}', '[1]', 'null']) {
      const r = decode('telemetry', `{"seq":1,"t":1,"v":${v}}`);
      expect(r.frames).toEqual([]);
      expect(r.discards).toMatchObject([{ reason: 'schema' }]);
    }
  });

  it('turns -0 into 0', () => {
    const [f] = decode('telemetry', '{"seq":-0,"t":0,"v":{"A":-0}}').frames as unknown as Array<{ seq: number; v: { A: number } }>;
    expect(Object.is(f.seq, 0) && Object.is(f.v.A, 0)).toBe(true);
  });

  it('bad JSON is one invalid_json discard', () => {
    for (const kind of ['telemetry', 'hello', 'state', 'event', 'ack'] as const) {
      const r = decode(kind, '{"seq":1,');
      expect(r.frames).toEqual([]);
      expect(r.discards).toMatchObject([{ type: 'discard', reason: 'invalid_json', raw: '{"seq":1,' }]);
    }
    expect(decode('telemetry', '').discards).toMatchObject([{ reason: 'invalid_json' }]);
  });

  it.each([
    ['online', true], ['offline', false], ['"online"', true], ['"offline"', false], ['online\n', true],
  ])('status %j', (payload, online) => {
    expect(decode('status', Buffer.from(payload))).toStrictEqual({ frames: [{ type: 'STATUS', online }], discards: [] });
  });

  it.each(['ONLINE', '{"online":true}', '', '"on"'])('status %j is a schema discard', (payload) => {
    expect(decode('status', payload)).toMatchObject({ frames: [], discards: [{ reason: 'schema' }] });
  });

  it('hello: decodes, and the topic is identity (a different deviceId is a schema discard)', () => {
    const hello = { deviceId: DEV, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN240117' };
    expect(decode('hello', JSON.stringify(hello)).frames).toStrictEqual([{ type: 'HELLO', ...hello }]);
    expect(decode('hello', JSON.stringify({ ...hello, deviceId: 'MSC-0002' })).discards).toMatchObject([{ reason: 'schema' }]);
    expect(decode('hello', JSON.stringify({ ...hello, icd: '1' })).discards).toMatchObject([{ reason: 'schema' }]);
  });

  it('hello: model, fw and serialNo of at most 64 characters, icd at most 999, else a schema discard that says which', () => {
    const hello = { deviceId: DEV, model: 'M'.repeat(64), fw: '3.4.1', icd: 999, serialNo: 'SN1' };
    expect(decode('hello', JSON.stringify(hello)).frames).toHaveLength(1);
    for (const [field, value] of [['model', 'M'.repeat(1_000_000)], ['fw', 'f'.repeat(65)], ['serialNo', 's'.repeat(65)], ['icd', 1000]] as const) {
      const out = decode('hello', JSON.stringify({ ...hello, [field]: value }));
      expect(out.frames).toEqual([]);
      expect(out.discards).toMatchObject([{ reason: 'schema', detail: expect.stringContaining(field) }]);
      expect(out.discards[0].raw.length).toBeLessThanOrEqual(128);
    }
  });

  it('state: sessionId null when none; unknown state or missing sessionId is a schema discard', () => {
    expect(decode('state', '{"seq":7,"t":9,"state":"RUNNING","sessionId":"S-1"}').frames)
      .toStrictEqual([{ type: 'S', seq: 7, t: 9, state: 'RUNNING', sessionId: 'S-1' }]);
    expect(decode('state', '{"seq":7,"t":9,"state":"IDLE","sessionId":null}').frames)
      .toStrictEqual([{ type: 'S', seq: 7, t: 9, state: 'IDLE', sessionId: null }]);
    expect(decode('state', '{"seq":7,"t":9,"state":"RUN","sessionId":null}').discards).toMatchObject([{ reason: 'schema' }]);
    expect(decode('state', '{"seq":7,"t":9,"state":"IDLE"}').discards).toMatchObject([{ reason: 'schema' }]);
  });

  it('event and ack', () => {
    expect(decode('event', '{"seq":1,"t":2,"code":"AIR_DETECTED","prio":"H","active":true,"text":"Air, venous"}').frames)
      .toStrictEqual([{ type: 'EV', seq: 1, t: 2, code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air, venous' }]);
    expect(decode('event', '{"seq":1,"t":2,"code":"X","prio":"H","active":1,"text":""}').discards).toMatchObject([{ reason: 'schema' }]);
    expect(decode('event', '{"seq":1,"t":2,"code":"X","prio":"Z","active":true,"text":""}').discards).toMatchObject([{ reason: 'schema' }]);
    expect(decode('ack', '{"id":"c17","result":"OK","detail":""}').frames)
      .toStrictEqual([{ type: 'ACK', cmdId: 'c17', result: 'OK', detail: '' }]);
    expect(decode('ack', '{"id":"c17","result":"MAYBE","detail":""}').discards).toMatchObject([{ reason: 'schema' }]);
    expect(decode('ack', '{"id":"c-17","result":"OK","detail":""}').discards).toMatchObject([{ reason: 'schema' }]);
  });

  it('a cmd payload from the broker is not device data', () => {
    expect(decode('cmd', '{"id":"c1","verb":"ID","args":[]}').discards).toMatchObject([{ reason: 'unknown_type' }]);
  });
});

describe('encodeMqttPayload round trips', () => {
  const frames: DeviceFrame[] = [
    { type: 'HELLO', deviceId: DEV, model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN240117' },
    { type: 'T', seq: 1042, t: 1764061200100, v: { QB: 150, PV: null, TR: 37.02 } },
    { type: 'S', seq: 1044, t: 1764061200250, state: 'RUNNING', sessionId: 'S-20261125-01' },
    { type: 'EV', seq: 1045, t: 1764061200300, code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air detected in venous line' },
    { type: 'ACK', cmdId: 'c18', result: 'REJ', detail: 'state PAUSED does not accept START' },
  ];
  const KIND: Record<string, MqttKind> = { HELLO: 'hello', T: 'telemetry', S: 'state', EV: 'event', ACK: 'ack' };

  it.each(frames)('$type', (f) => {
    const payload = encodeMqttPayload(f as Parameters<typeof encodeMqttPayload>[0]);
    expect(decode(KIND[f.type], payload)).toStrictEqual({ frames: [f], discards: [] });
  });

  it('uses the ICD §2 field names', () => {
    expect(JSON.parse(encodeMqttPayload(frames[3] as Parameters<typeof encodeMqttPayload>[0])))
      .toEqual({ seq: 1045, t: 1764061200300, code: 'AIR_DETECTED', prio: 'H', active: true, text: 'Air detected in venous line' });
    expect(JSON.parse(encodeMqttPayload(frames[4] as Parameters<typeof encodeMqttPayload>[0])))
      .toEqual({ id: 'c18', result: 'REJ', detail: 'state PAUSED does not accept START' });
  });

  it('encodes a telemetry batch as an array', () => {
    const batch = [1, 2, 3].map((seq) => ({ type: 'T' as const, ...sample(seq) }));
    expect(decode('telemetry', encodeMqttPayload(batch))).toStrictEqual({ frames: batch, discards: [] });
    expect(() => encodeMqttPayload({ type: 'T', seq: 1, t: 1, v: { QB: Number.NaN } })).toThrow(RangeError);
  });
});

describe('MQTT commands', () => {
  it('encodes {"id","verb","args"} and decodes it on the device side', () => {
    const cmd = { cmdId: 'c17', verb: 'SET' as const, args: ['QB', 160] };
    expect(encodeMqttCommand(cmd)).toBe('{"id":"c17","verb":"SET","args":["QB",160]}');
    expect(decodeMqttCommand(Buffer.from(encodeMqttCommand(cmd)))).toStrictEqual({ type: 'command', cmd });
    expect(decodeMqttCommand('{"id":"c1","verb":"ID"}')).toStrictEqual({ type: 'command', cmd: { cmdId: 'c1', verb: 'ID', args: [] } });
  });

  it.each([
    ['{"id":', { type: 'discard', reason: 'invalid_json' }],
    ['[1]', { type: 'discard', reason: 'schema' }],
    ['"ID"', { type: 'discard', reason: 'schema' }],
    ['{"id":"c_1","verb":"ID","args":[]}', { type: 'malformed_command', cmdId: null }],
    ['{"verb":"ID","args":[]}', { type: 'malformed_command', cmdId: null }],
    ['{"id":"c1","verb":"FLY","args":[]}', { type: 'malformed_command', cmdId: 'c1' }],
    ['{"id":"c1","verb":"SET","args":"QB,160"}', { type: 'malformed_command', cmdId: 'c1' }],
    ['{"id":"c1","verb":"SET","args":["QB",{"v":1}]}', { type: 'malformed_command', cmdId: 'c1' }],
  ])('%s', (payload, expected) => {
    expect(decodeMqttCommand(payload)).toMatchObject(expected);
  });
});

describe('device time plausibility (ICD §2 t, safe reading)', () => {
  it('discards a telemetry sample whose time no store can hold, keeps the rest of the batch', () => {
    const r = decodeMqttPayload('telemetry', JSON.stringify([
      { seq: 1, t: 1764061200100, v: { QB: 150 } },
      { seq: 2, t: 1764061200100000, v: { QB: 150 } },
    ]), 'MSC-0001');
    expect(r.frames).toHaveLength(1);
    expect(r.discards).toEqual([expect.objectContaining({ reason: 'schema' })]);
  });
});

describe('device ids in topics (safe reading)', () => {
  it('accepts ICD-style ids and refuses reserved, wildcard and oversized ones', () => {
    expect(parseTopic('msc/v1', 'msc/v1/MSC-0001/telemetry')).toEqual({ deviceId: 'MSC-0001', kind: 'telemetry' });
    expect(parseTopic('msc/v1', 'msc/v1/gateway/telemetry')).toBeNull();
    expect(parseTopic('msc/v1', 'msc/v1/+/telemetry')).toBeNull();
    expect(parseTopic('msc/v1', `msc/v1/${'A'.repeat(65)}/telemetry`)).toBeNull();
  });
});
