import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crcHex } from '../../../src/protocol/crc.js';
import {
  MAX_FRAME_BYTES, decodeCommandLine, decodeLine, encodeCommand, encodeDeviceFrame,
} from '../../../src/protocol/serial.js';
import { formatDecimal } from '../../../src/protocol/types.js';
import type { DeviceFrame, Discard } from '../../../src/protocol/types.js';

/** A correctly framed line (no terminator) around `body`: lets each test break exactly one thing. */
const framed = (body: string): string => `$${body}*${crcHex(body)}`;

/** A T body whose CRC has a hex letter in it, so its lower-case form differs. */
const LETTER_CRC_BODY = ((): string => {
  for (let i = 0; ; i++) if (/[A-F]/.test(crcHex(`T,1,2,QB=${i}`))) return `T,1,2,QB=${i}`;
})();

/** ICD §3 device examples, their exact decoded frames, and the decimals that reproduce the line. */
const DEVICE_VECTORS: Array<{ line: string; frame: DeviceFrame; decimals?: Record<string, number> }> = [
  {
    line: '$HELLO,MSC-0001,MSC-ALS 2,3.4.1,1,SN240117*8B0E',
    frame: { type: 'HELLO', deviceId: 'MSC-0001', model: 'MSC-ALS 2', fw: '3.4.1', icd: 1, serialNo: 'SN240117' },
  },
  {
    line: '$T,1042,1764061200100,QB=150.0,QP=30.2,QR=200.0,PA=-85.4,PF=142.0,PV=118.6,PP=86.1,TMP=44.2,'
      + 'TR=37.02,TB=36.6,HEP=5.0,AIR=0,BLD=0,SQB=150,SQP=30,STR=37.0,SHEP=5.0*5028',
    frame: {
      type: 'T', seq: 1042, t: 1764061200100,
      v: {
        QB: 150, QP: 30.2, QR: 200, PA: -85.4, PF: 142, PV: 118.6, PP: 86.1, TMP: 44.2, TR: 37.02, TB: 36.6,
        HEP: 5, AIR: 0, BLD: 0, SQB: 150, SQP: 30, STR: 37, SHEP: 5,
      },
    },
    decimals: { QB: 1, QP: 1, QR: 1, PA: 1, PF: 1, PV: 1, PP: 1, TMP: 1, TR: 2, TB: 1, HEP: 1, STR: 1, SHEP: 1 },
  },
  {
    line: '$T,1043,1764061200200,QB=150.1,PV=!,TR=37.01*07F2',
    frame: { type: 'T', seq: 1043, t: 1764061200200, v: { QB: 150.1, PV: null, TR: 37.01 } },
  },
  {
    line: '$S,1044,1764061200250,RUNNING,S-20261125-01*27E6',
    frame: { type: 'S', seq: 1044, t: 1764061200250, state: 'RUNNING', sessionId: 'S-20261125-01' },
  },
  {
    line: '$EV,1045,1764061200300,AIR_DETECTED,H,1,Air detected in venous line*4F41',
    frame: {
      type: 'EV', seq: 1045, t: 1764061200300, code: 'AIR_DETECTED', prio: 'H', active: true,
      text: 'Air detected in venous line',
    },
  },
  { line: '$ACK,c17,OK,*AD4D', frame: { type: 'ACK', cmdId: 'c17', result: 'OK', detail: '' } },
  {
    line: '$ACK,c18,REJ,state PAUSED does not accept START*CF80',
    frame: { type: 'ACK', cmdId: 'c18', result: 'REJ', detail: 'state PAUSED does not accept START' },
  },
];

function only(line: string): DeviceFrame | Discard {
  const results = decodeLine(line);
  expect(results).toHaveLength(1);
  return results[0];
}

function discardOf(line: string): Discard {
  const r = only(line);
  expect(r.type).toBe('discard');
  return r as Discard;
}

describe('decodeLine: ICD §3 examples', () => {
  it.each(DEVICE_VECTORS)('decodes $line', ({ line, frame }) => {
    expect(decodeLine(line)).toStrictEqual([frame]);
    expect(decodeLine(line + '\r')).toStrictEqual([frame]);
  });

  it.each(DEVICE_VECTORS)('re-encodes $line identically', ({ line, frame, decimals }) => {
    expect(encodeDeviceFrame(frame as Parameters<typeof encodeDeviceFrame>[0], decimals)).toBe(line + '\r\n');
  });

  it('encodes the CMD examples and the device side decodes them', () => {
    expect(encodeCommand({ cmdId: 'c17', verb: 'SET', args: ['QB', 160] })).toBe('$CMD,c17,SET,QB,160*86D1\r\n');
    expect(encodeCommand({ cmdId: 'c18', verb: 'START', args: ['S-20261125-01'] }))
      .toBe('$CMD,c18,START,S-20261125-01*D653\r\n');
    expect(decodeCommandLine('$CMD,c17,SET,QB,160*86D1\r'))
      .toStrictEqual({ type: 'command', cmd: { cmdId: 'c17', verb: 'SET', args: ['QB', '160'] } });
    expect(decodeCommandLine('$CMD,c18,START,S-20261125-01*D653'))
      .toStrictEqual({ type: 'command', cmd: { cmdId: 'c18', verb: 'START', args: ['S-20261125-01'] } });
  });

  it('treats a CMD line arriving at the gateway as unknown_type (the device never sends CMD)', () => {
    expect(discardOf('$CMD,c17,SET,QB,160*86D1').reason).toBe('unknown_type');
  });
});

describe('decodeLine: values', () => {
  it('keeps unknown channel keys and `!` as null', () => {
    const f = only(framed('T,7,1000,SpO2=97.5,NEW_CH=!,X1=-3'));
    expect(f).toStrictEqual({ type: 'T', seq: 7, t: 1000, v: { SpO2: 97.5, NEW_CH: null, X1: -3 } });
  });

  it('accepts a T frame without channels (nothing measured)', () => {
    expect(only(framed('T,8,1000'))).toStrictEqual({ type: 'T', seq: 8, t: 1000, v: {} });
  });

  it.each([
    ['0', 0], ['4294967295', 4294967295], ['4294967294', 4294967294], ['007', 7],
  ])('accepts seq %s at the 32-bit boundaries', (text, seq) => {
    expect(only(framed(`S,${text},1,IDLE,-`))).toMatchObject({ type: 'S', seq, sessionId: null });
  });

  it('reads -0 and -0.0 as zero, never -0', () => {
    const f = only(framed('T,1,1,A=-0,B=-0.0,C=0.000')) as { v: Record<string, number> };
    for (const key of ['A', 'B', 'C']) expect(Object.is(f.v[key], 0)).toBe(true);
  });

  it('parses every ICD decimal exactly as Number() does', () => {
    const decimal = fc.tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,20}$/), fc.option(fc.stringMatching(/^[0-9]{1,20}$/)))
      .map(([neg, int, frac]) => (neg ? '-' : '') + int + (frac === null ? '' : '.' + frac));
    fc.assert(
      fc.property(decimal, (text) => {
        const f = only(framed(`T,1,1,V=${text}`)) as { v: Record<string, number> };
        const expected = Number(text);
        expect(Object.is(f.v.V, expected === 0 ? 0 : expected)).toBe(true);
      }),
    );
  });

  it('joins an EV text that itself holds commas, and reads a missing text as empty', () => {
    expect(only(framed('EV,1,2,PV_HIGH,M,0,PV 320, limit 300,  check line'))).toMatchObject({
      code: 'PV_HIGH', prio: 'M', active: false, text: 'PV 320, limit 300,  check line',
    });
    expect(only(framed('EV,1,2,DOOR,I,1'))).toMatchObject({ code: 'DOOR', prio: 'I', active: true, text: '' });
    expect(only(framed('ACK,a1,ERR,bad arg, expected number'))).toMatchObject({ detail: 'bad arg, expected number' });
    expect(only(framed('ACK,a1,OK'))).toStrictEqual({ type: 'ACK', cmdId: 'a1', result: 'OK', detail: '' });
  });
});

describe('decodeLine: discards', () => {
  const T = '$T,1043,1764061200200,QB=150.1,PV=!,TR=37.01*07F2';

  it('bad_crc: a CRC that does not match the body', () => {
    expect(discardOf(T.replace('07F2', '07F3'))).toMatchObject({ reason: 'bad_crc', raw: T.replace('07F2', '07F3') });
    expect(discardOf(T.replace('QB=150.1', 'QB=150.2')).reason).toBe('bad_crc');
  });

  it('too_long: over 512 bytes with CR LF; exactly 512 still decodes', () => {
    const head = 'EV,1,2,LONG,L,1,';
    const room = MAX_FRAME_BYTES - (head.length + 8);
    const longest = framed(head + 'x'.repeat(room));
    expect(longest.length + 2).toBe(MAX_FRAME_BYTES);
    expect(only(longest)).toMatchObject({ type: 'EV', text: 'x'.repeat(room) });
    expect(only(longest + '\r')).toMatchObject({ type: 'EV' });
    const over = framed(head + 'x'.repeat(room + 1));
    expect(discardOf(over)).toMatchObject({ reason: 'too_long' });
    expect(discardOf(over).raw).toHaveLength(128);
    expect(discardOf('garbage'.repeat(100)).reason).toBe('too_long');
  });

  it('leading_garbage: bytes before the last `$` are one discard, the frame still decodes', () => {
    const results = decodeLine('\x00\xff noise$$' + T.slice(1));
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ type: 'discard', reason: 'leading_garbage', raw: '\x00\xff noise$' });
    expect(results[1]).toMatchObject({ type: 'T', seq: 1043 });
    expect(decodeLine('half a line from before the re-plug')).toStrictEqual([
      expect.objectContaining({ reason: 'leading_garbage', raw: 'half a line from before the re-plug' }),
    ]);
    expect(decodeLine('')).toStrictEqual([]);
    expect(decodeLine('\r')).toStrictEqual([]);
  });

  it('unknown_type: a well-framed line of a type the ICD does not define', () => {
    expect(discardOf(framed('X,1,2')).reason).toBe('unknown_type');
    expect(discardOf(framed('t,1,2,QB=1')).reason).toBe('unknown_type');
  });

  const MALFORMED: Array<[string, string]> = [
    ['missing *CRC', '$T,1,2,QB=1'],
    ['CRC of 3 digits', '$T,1,2,QB=1*ABC'],
    ['lower-case CRC', `$${LETTER_CRC_BODY}*${crcHex(LETTER_CRC_BODY).toLowerCase()}`],
    ['CRC followed by junk', `${framed('T,1,2,QB=1')} `],
    ['non-printable byte in body (CRC right)', framed('T,1,2,QB=1\tPV=2')],
    ['byte above 0x7E in body (CRC right)', framed('EV,1,2,X,H,1,caf\xe9')],
    ['`*` inside body', `$T,1*2${'*'}${crcHex('T,1*2')}`],
    ['empty body', framed('')],
    ['seq 2^32', framed('T,4294967296,2,QB=1')],
    ['seq negative', framed('T,-1,2,QB=1')],
    ['seq decimal', framed('T,1.5,2,QB=1')],
    ['seq empty', framed('T,,2,QB=1')],
    ['seq missing', framed('T')],
    ['t missing', framed('T,1')],
    ['t negative', framed('T,1,-2,QB=1')],
    ['t exponent', framed('T,1,1e12,QB=1')],
    ['value with exponent', framed('T,1,2,QB=1e2')],
    ['value with plus sign', framed('T,1,2,QB=+1')],
    ['value without int part', framed('T,1,2,QB=.5')],
    ['value with trailing dot', framed('T,1,2,QB=5.')],
    ['value empty', framed('T,1,2,QB=')],
    ['value NaN', framed('T,1,2,QB=NaN')],
    ['value infinite', framed(`T,1,2,QB=1${'0'.repeat(400)}`)],
    ['pair without =', framed('T,1,2,QB')],
    ['empty pair', framed('T,1,2,QB=1,')],
    ['key starting with a digit', framed('T,1,2,1QB=1')],
    ['key __proto__', framed('T,1,2,__proto__=1')],
    ['key with a dash', framed('T,1,2,Q-B=1')],
    ['key twice', framed('T,1,2,QB=1,QB=2')],
    ['unknown state', framed('S,1,2,RUNNIN,-')],
    ['state missing session field', framed('S,1,2,IDLE')],
    ['state empty session', framed('S,1,2,IDLE,')],
    ['state extra field', framed('S,1,2,RUNNING,S1,x')],
    ['event bad priority', framed('EV,1,2,AIR,X,1,t')],
    ['event priority two letters', framed('EV,1,2,AIR,HH,1,t')],
    ['event active 2', framed('EV,1,2,AIR,H,2,t')],
    ['event active missing', framed('EV,1,2,AIR,H')],
    ['event empty code', framed('EV,1,2,,H,1,t')],
    ['ack bad result', framed('ACK,c1,NO,')],
    ['ack cmd_id of 9', framed('ACK,c12345678,OK,')],
    ['ack cmd_id empty', framed('ACK,,OK,')],
    ['hello 4 fields', framed('HELLO,MSC-0001,MSC-ALS 2,3.4.1,1')],
    ['hello 6 fields', framed('HELLO,MSC-0001,MSC-ALS 2,3.4.1,1,SN1,x')],
    ['hello icd not integer', framed('HELLO,MSC-0001,MSC-ALS 2,3.4.1,1.0,SN1')],
    ['hello empty device id', framed('HELLO,,MSC-ALS 2,3.4.1,1,SN1')],
  ];
  it('HELLO with a field over 64 characters or icd over 999 is a schema discard that says which', () => {
    expect(discardOf(framed(`HELLO,MSC-0001,${'M'.repeat(65)},3.4.1,1,SN1`))).toMatchObject({ reason: 'schema', detail: expect.stringContaining('model is 65') });
    expect(discardOf(framed(`HELLO,MSC-0001,M,${'f'.repeat(100)},1,SN1`))).toMatchObject({ reason: 'schema', detail: expect.stringContaining('fw') });
    expect(discardOf(framed(`HELLO,MSC-0001,M,f,1,${'s'.repeat(65)}`))).toMatchObject({ reason: 'schema', detail: expect.stringContaining('serialNo') });
    expect(discardOf(framed('HELLO,MSC-0001,M,f,1000,SN1'))).toMatchObject({ reason: 'schema', detail: expect.stringContaining('icd') });
    expect(decodeLine(framed(`HELLO,MSC-0001,${'M'.repeat(64)},f,999,SN1`))).toMatchObject([{ type: 'HELLO', icd: 999 }]);
  });

  it.each(MALFORMED)('malformed: %s', (_why, line) => {
    const d = discardOf(line);
    expect(d.reason).toBe('malformed');
    expect(d.detail.length).toBeGreaterThan(0);
  });
});

describe('encodeDeviceFrame', () => {
  it('formats numbers as ICD decimals: never exponent notation, never -0', () => {
    expect(formatDecimal(-0.0001)).toBe('0');
    expect(formatDecimal(-0.04, 1)).toBe('0.0');
    expect(formatDecimal(1e21)).toBe('1000000000000000000000');
    expect(formatDecimal(1.5e-7)).toBe('0');
    expect(formatDecimal(37.02)).toBe('37.02');
    expect(formatDecimal(150, 1)).toBe('150.0');
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.option(fc.integer({ min: 0, max: 6 })), (x, d) => {
        const s = formatDecimal(x, d ?? undefined);
        expect(s).toMatch(/^-?[0-9]+(\.[0-9]+)?$/);
        expect(s).not.toMatch(/^-0(\.0+)?$/);
        if (d === null && Number.isInteger(x)) expect(Number(s)).toBe(x + 0);
        else expect(Math.abs(Number(s) - x)).toBeLessThanOrEqual(0.5 * 10 ** -(d ?? 3) + Math.abs(x) * 1e-15);
      }),
      { numRuns: 2000 },
    );
    expect(() => formatDecimal(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('round-trips random frames through decodeLine', () => {
    const value = fc.oneof(fc.constant(null), fc.integer({ min: -1000, max: 1000 }),
      fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((x) => Math.round(x * 1000) / 1000));
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,7}$/);
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(), fc.dictionary(key, value, { maxKeys: 20 }), (seq, t, v) => {
        const frame = { type: 'T' as const, seq, t, v };
        const line = encodeDeviceFrame(frame);
        expect(line.endsWith('\r\n')).toBe(true);
        const expected = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? null : x + 0]));
        expect(decodeLine(line.slice(0, -2))).toStrictEqual([{ ...frame, v: expected }]);
      }),
    );
  });

  it('sanitises EV text and ACK detail ($, * and non-printables become spaces; commas stay)', () => {
    const line = encodeDeviceFrame({ type: 'EV', seq: 1, t: 2, code: 'X', prio: 'L', active: false, text: 'a$b*c\nd,e\u00e9' });
    expect(only(line.trimEnd())).toMatchObject({ text: 'a b c d,e ' });
    const ack = encodeDeviceFrame({ type: 'ACK', cmdId: 'c1', result: 'REJ', detail: 'x*y' });
    expect(only(ack.trimEnd())).toMatchObject({ detail: 'x y' });
  });

  it('cuts a long text so the frame stays within 512 bytes', () => {
    const line = encodeDeviceFrame({ type: 'EV', seq: 1, t: 2, code: 'X', prio: 'L', active: true, text: 'y'.repeat(1000) });
    expect(line.length).toBe(MAX_FRAME_BYTES);
    expect(only(line.slice(0, -2))).toMatchObject({ type: 'EV' });
  });

  it('writes `-` for no session and `!` for a sensor fault', () => {
    expect(encodeDeviceFrame({ type: 'S', seq: 0, t: 0, state: 'IDLE', sessionId: null })).toBe(`${framed('S,0,0,IDLE,-')}\r\n`);
    expect(encodeDeviceFrame({ type: 'T', seq: 0, t: 0, v: { PV: null } })).toBe(`${framed('T,0,0,PV=!')}\r\n`);
  });

  it('throws RangeError for what no device can send', () => {
    expect(() => encodeDeviceFrame({ type: 'T', seq: 1, t: 1, v: { QB: Number.NaN } })).toThrow(RangeError);
    expect(() => encodeDeviceFrame({ type: 'T', seq: 1, t: 1, v: { 'Q B': 1 } })).toThrow(RangeError);
    expect(() => encodeDeviceFrame({ type: 'T', seq: 2 ** 32, t: 1, v: {} })).toThrow(RangeError);
    expect(() => encodeDeviceFrame({ type: 'S', seq: 1, t: -1, state: 'IDLE', sessionId: null })).toThrow(RangeError);
    expect(() => encodeDeviceFrame({ type: 'S', seq: 1, t: 1, state: 'RUNNING', sessionId: '-' })).toThrow(RangeError);
    expect(() => encodeDeviceFrame({ type: 'HELLO', deviceId: 'a,b', model: 'm', fw: 'f', icd: 1, serialNo: 's' }))
      .toThrow(RangeError);
    expect(() => encodeCommand({ cmdId: 'c1', verb: 'START', args: ['a*b'] })).toThrow(RangeError);
  });
});

describe('decodeCommandLine (device side)', () => {
  it('ignores bytes before the `$`', () => {
    expect(decodeCommandLine(`zz${framed('CMD,c1,ID')}`)).toStrictEqual({ type: 'command', cmd: { cmdId: 'c1', verb: 'ID', args: [] } });
  });

  it('discards what is not a CMD frame: the device stays silent', () => {
    expect(decodeCommandLine('$CMD,c17,SET,QB,160*86D0')).toMatchObject({ type: 'discard', reason: 'bad_crc' });
    expect(decodeCommandLine(framed('ACK,c1,OK,'))).toMatchObject({ type: 'discard', reason: 'unknown_type' });
    expect(decodeCommandLine('hello')).toMatchObject({ type: 'discard', reason: 'leading_garbage' });
    expect(decodeCommandLine('')).toMatchObject({ type: 'discard', reason: 'leading_garbage' });
    expect(decodeCommandLine('$CMD,c1,ID')).toMatchObject({ type: 'discard', reason: 'malformed' });
    expect(decodeCommandLine(framed(`CMD,c1,SYNC,${'9'.repeat(600)}`))).toMatchObject({ type: 'discard', reason: 'too_long' });
  });

  it('reports a bad cmd_id without an id and a bad verb with its id (device answers ACK ERR)', () => {
    expect(decodeCommandLine(framed('CMD,c_1,ID'))).toMatchObject({ type: 'malformed_command', cmdId: null });
    expect(decodeCommandLine(framed('CMD'))).toMatchObject({ type: 'malformed_command', cmdId: null });
    expect(decodeCommandLine(framed('CMD,c1,FLY,1'))).toMatchObject({ type: 'malformed_command', cmdId: 'c1' });
    expect(decodeCommandLine(framed('CMD,c1'))).toMatchObject({ type: 'malformed_command', cmdId: 'c1' });
  });
});

describe('device time plausibility (ICD §1 t_ms, safe reading)', () => {
  it('keeps a wrong but possible clock and discards a time no store can hold (µs instead of ms)', () => {
    expect(decodeLine(framed('T,1,0,QB=1'))[0]).toMatchObject({ type: 'T', t: 0 });
    expect(decodeLine(framed('T,1,8999999999999,QB=1'))[0]).toMatchObject({ type: 'T', t: 8999999999999 });
    expect(decodeLine(framed('T,1,1764061200100000,QB=1'))).toEqual([
      expect.objectContaining({ type: 'discard', reason: 'malformed' }),
    ]);
    expect(decodeLine(framed('S,2,9000000000000,RUNNING,S-1'))[0]).toMatchObject({ type: 'discard', reason: 'malformed' });
  });
});
