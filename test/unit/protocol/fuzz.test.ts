/**
 * Property tests of the serial receive path (LineSplitter + decodeLine) against noisy input, ICD §1:
 * "Line noise, partial lines after a cable re-plug and binary garbage happen in practice."
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crcHex } from '../../../src/protocol/crc.js';
import { LineSplitter } from '../../../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../../../src/protocol/lineSplitter.js';
import { MAX_LINE_CHARS, decodeLine, encodeDeviceFrame } from '../../../src/protocol/serial.js';
import { DISCARD_REASONS, MAX_DEVICE_TIME_MS, SESSION_STATES } from '../../../src/protocol/types.js';
import type { DeviceFrame, Discard } from '../../../src/protocol/types.js';

type OutFrame = Parameters<typeof encodeDeviceFrame>[0];

async function receive(data: Buffer, cuts: number[]): Promise<{ frames: DeviceFrame[]; discards: Discard[] }> {
  const splitter = new LineSplitter();
  const frames: DeviceFrame[] = [];
  const discards: Discard[] = [];
  splitter.on('data', (o: SplitterOutput) => {
    if (o.kind === 'too_long') {
      discards.push({ type: 'discard', reason: 'too_long', raw: '', detail: `${o.bytes} bytes` });
      return;
    }
    const results = decodeLine(o.line);
    // The splitter never emits '' and strips one CR; decodeLine strips one more, so only "\r" gives nothing.
    expect(results.length === 0).toBe(o.line === '\r');
    expect(results.length).toBeLessThanOrEqual(2);
    for (const r of results) (r.type === 'discard' ? discards : frames).push(r as never);
  });
  const ended = once(splitter, 'end');
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const p of points) {
    splitter.write(data.subarray(from, p));
    from = p;
  }
  splitter.write(data.subarray(from));
  splitter.end();
  await ended;
  return { frames, discards };
}

// ---- Generators of known pieces ----

const TEXT = /^[\x20-\x23\x25-\x29\x2b-\x7e]{0,60}$/; // printable, no `$` or `*`
const ID_FIELD = /^[\x20-\x23\x25-\x29\x2b\x2d-\x7e]{1,16}$/; // also no `,`
const value = fc.oneof(
  fc.constant(null),
  fc.integer({ min: -100000, max: 100000 }),
  fc.double({ min: -1e5, max: 1e5, noNaN: true }).map((x) => Math.round(x * 1000) / 1000 + 0),
);
const seq = fc.integer({ min: 0, max: 0xffffffff });
const time = fc.integer({ min: 0, max: MAX_DEVICE_TIME_MS }); // ICD safe reading: later times are discarded

const validFrame: fc.Arbitrary<OutFrame> = fc.oneof(
  fc.record({
    type: fc.constant('T' as const), seq, t: time,
    v: fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,5}$/), value, { maxKeys: 16 }),
  }),
  fc.record({
    type: fc.constant('S' as const), seq, t: time, state: fc.constantFrom(...SESSION_STATES),
    sessionId: fc.option(fc.stringMatching(/^[A-Za-z0-9-]{1,32}$/).filter((id) => id !== '-')),
  }),
  fc.record({
    type: fc.constant('EV' as const), seq, t: time, code: fc.stringMatching(/^[A-Z_]{1,20}$/),
    prio: fc.constantFrom('H' as const, 'M' as const, 'L' as const, 'I' as const), active: fc.boolean(),
    text: fc.stringMatching(TEXT),
  }),
  fc.record({
    type: fc.constant('ACK' as const), cmdId: fc.stringMatching(/^[A-Za-z0-9]{1,8}$/),
    result: fc.constantFrom('OK' as const, 'REJ' as const, 'ERR' as const), detail: fc.stringMatching(TEXT),
  }),
  fc.record({
    type: fc.constant('HELLO' as const), deviceId: fc.stringMatching(ID_FIELD), model: fc.stringMatching(ID_FIELD),
    fw: fc.stringMatching(ID_FIELD), icd: fc.integer({ min: 0, max: 99 }), serialNo: fc.stringMatching(ID_FIELD),
  }),
);

/** True when `content` is still a well-formed frame whose CRC matches: computed without the decoder. */
function stillValid(content: string): boolean {
  const m = /^\$([\x20-\x23\x25-\x29\x2b-\x7e]*)\*([0-9A-F]{4})$/.exec(content);
  return m !== null && crcHex(m[1]) === m[2];
}

type Piece =
  | { kind: 'frame'; frame: OutFrame; text: string }
  | { kind: 'flipped' | 'garbage' | 'too_long' | 'empty'; text: string };

const crlfOrLf = fc.constantFrom('\r\n', '\n');

/**
 * A valid frame with exactly one bit flipped inside `$`…CRC. The flipped byte may not become `$`
 * (a second start would add a leading_garbage discard) nor '\n' (it would split the line); and the
 * result must fail the CRC (`stillValid` checks that independently), so it is exactly one discard.
 */
const flipped = fc.tuple(validFrame, fc.nat(), fc.integer({ min: 0, max: 7 }), crlfOrLf)
  .map(([frame, at, bit, eol]) => {
    const content = encodeDeviceFrame(frame).slice(0, -2);
    const i = at % content.length;
    const byte = content.charCodeAt(i) ^ (1 << bit);
    return { content: content.slice(0, i) + String.fromCharCode(byte) + content.slice(i + 1), byte, eol };
  })
  .filter(({ content, byte }) => byte !== 0x24 && byte !== 0x0a && !stillValid(content))
  .map(({ content, eol }): Piece => ({ kind: 'flipped', text: content + eol }));

const notNlDollar = (b: number): boolean => b !== 0x0a && b !== 0x24;
/** Noise without `$` or '\n', first byte not '\r' so the line is never empty after stripping. */
const garbage = fc.tuple(
  fc.integer({ min: 0, max: 255 }).filter((b) => notNlDollar(b) && b !== 0x0d),
  fc.uint8Array({ maxLength: MAX_LINE_CHARS - 1 }).map((a) => a.filter(notNlDollar)),
  crlfOrLf,
).map(([first, rest, eol]): Piece => ({ kind: 'garbage', text: String.fromCharCode(first) + Buffer.from(rest).toString('latin1') + eol }));

/** Over-long lines (they may even hold `$`): content of at least 512 bytes, so > 510 after any CR strip. */
const tooLong = fc.tuple(fc.uint8Array({ minLength: MAX_LINE_CHARS + 2, maxLength: 3000 }), crlfOrLf)
  .map(([a, eol]): Piece => ({ kind: 'too_long', text: Buffer.from(a.map((b) => (b === 0x0a ? 0x20 : b))).toString('latin1') + eol }));

const piece: fc.Arbitrary<Piece> = fc.oneof(
  { weight: 4, arbitrary: validFrame.map((frame): Piece => ({ kind: 'frame', frame, text: encodeDeviceFrame(frame) })) },
  { weight: 3, arbitrary: flipped },
  { weight: 2, arbitrary: garbage },
  { weight: 1, arbitrary: tooLong },
  { weight: 1, arbitrary: crlfOrLf.map((eol): Piece => ({ kind: 'empty', text: eol })) },
);

/** What decodeLine gives back for a frame the encoder wrote: plain objects (fc.record's have no prototype), no -0. */
function expectedFrame(f: OutFrame): DeviceFrame {
  return f.type === 'T'
    ? { ...f, v: Object.fromEntries(Object.entries(f.v).map(([k, x]) => [k, x === null ? null : x + 0])) }
    : { ...f };
}

describe('serial receive path under noise', () => {
  it('counts exactly: N valid frames decode, M flipped + K garbage + L over-long lines are discards', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 40 }), async (pieces, cuts) => {
        const data = Buffer.from(pieces.map((p) => p.text).join(''), 'latin1');
        const { frames, discards } = await receive(data, cuts);
        const valid = pieces.filter((p): p is Extract<Piece, { kind: 'frame' }> => p.kind === 'frame');
        const count = (kind: Piece['kind']): number => pieces.filter((p) => p.kind === kind).length;
        expect(frames).toStrictEqual(valid.map((p) => expectedFrame(p.frame)));
        expect(discards).toHaveLength(count('flipped') + count('garbage') + count('too_long'));
        expect(discards.filter((d) => d.reason === 'too_long')).toHaveLength(count('too_long'));
        expect(discards.filter((d) => d.reason === 'leading_garbage').length).toBeGreaterThanOrEqual(count('garbage'));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on random bytes, and every result is a frame or a known discard', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 4000 }),
      // Bias towards the framing characters so partial frames turn up often.
      fc.array(fc.constantFrom(0x24, 0x2a, 0x2c, 0x0d, 0x0a, 0x3d, 0x21, 0x54, 0x31, 0x41), { maxLength: 2000 }).map((a) => Uint8Array.from(a)),
    );
    await fc.assert(
      fc.asyncProperty(bytes, fc.array(fc.nat(), { maxLength: 20 }), async (input, cuts) => {
        const { frames, discards } = await receive(Buffer.from(input), cuts);
        for (const d of discards) {
          expect(DISCARD_REASONS).toContain(d.reason);
          expect(d.raw.length).toBeLessThanOrEqual(128);
        }
        for (const f of frames) expect(['HELLO', 'T', 'S', 'EV', 'ACK']).toContain(f.type);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on any single-bit flip of a valid frame (including into `$` or a line break)', () => {
    fc.assert(
      fc.property(validFrame, fc.nat(), fc.integer({ min: 0, max: 7 }), (frame, at, bit) => {
        const line = encodeDeviceFrame(frame);
        const i = at % line.length;
        const broken = line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ (1 << bit)) + line.slice(i + 1);
        for (const part of broken.split('\n')) {
          for (const r of decodeLine(part)) expect(r.type === 'discard' || r.type === frame.type).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
