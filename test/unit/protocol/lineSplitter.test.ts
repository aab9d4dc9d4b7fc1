import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LineSplitter } from '../../../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../../../src/protocol/lineSplitter.js';
import { MAX_FRAME_BYTES } from '../../../src/protocol/serial.js';

async function split(chunks: Array<Buffer | string>, opts?: { maxBytes?: number }): Promise<SplitterOutput[]> {
  const splitter = new LineSplitter(opts);
  const out: SplitterOutput[] = [];
  splitter.on('data', (o: SplitterOutput) => out.push(o));
  const ended = once(splitter, 'end');
  for (const c of chunks) splitter.write(c);
  splitter.end();
  await ended;
  return out;
}

/** Cuts `data` at the given (sorted, deduplicated) offsets. */
function cut(data: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(data.subarray(from, p));
    from = p;
  }
  parts.push(data.subarray(from));
  return parts;
}

const line = (l: string): SplitterOutput => ({ kind: 'line', line: l });

describe('LineSplitter', () => {
  it('splits CR LF and bare LF lines and strips one trailing CR', async () => {
    expect(await split(['$A*0000\r\n$B*0000\n', 'x\r\r\n'])).toEqual([line('$A*0000'), line('$B*0000'), line('x\r')]);
  });

  it('skips empty lines', async () => {
    expect(await split(['\r\n\n\r\na\n'])).toEqual([line('a')]);
  });

  it('gives the same lines whatever the chunk boundaries', async () => {
    const lineArb = fc.oneof(
      fc.stringMatching(/^[ -~]{0,80}$/),
      fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b.filter((x) => x !== 0x0a)).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(lineArb, fc.boolean()), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }),
        async (lines, at) => {
          const text = lines.map(([l, crlf]) => l + (crlf ? '\r\n' : '\n')).join('');
          const data = Buffer.from(text, 'latin1');
          const whole = await split([data]);
          expect(await split(cut(data, at))).toEqual(whole);
          const expected = lines
            .map(([l, crlf]) => (crlf || !l.endsWith('\r') ? l : l.slice(0, -1)))
            .filter((l) => l.length > 0)
            .map(line);
          expect(whole).toEqual(expected);
        }),
      { numRuns: 200 },
    );
  });

  it('decodes bytes as latin1: one char per byte, binary garbage included', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x0a && b !== 0x0d));
    const out = await split([Buffer.concat([bytes, Buffer.from('\r\n')])]);
    expect(out).toHaveLength(1);
    const got = (out[0] as { line: string }).line;
    expect(got.length).toBe(bytes.length);
    expect(Buffer.from(got, 'latin1').equals(bytes)).toBe(true);
  });

  it('passes a 512-byte frame and reports a longer line once, with its size, at its terminator', async () => {
    const max = 'a'.repeat(MAX_FRAME_BYTES - 2);
    const over = 'b'.repeat(MAX_FRAME_BYTES - 1);
    expect(await split([`${max}\r\n${over}\r\nnext\n`])).toEqual([
      line(max), { kind: 'too_long', bytes: MAX_FRAME_BYTES + 1 }, line('next'),
    ]);
    // LF only: the content is what counts, so 511 bytes + LF is too long as well.
    expect(await split([`${over}\nnext\n`])).toEqual([{ kind: 'too_long', bytes: MAX_FRAME_BYTES }, line('next')]);
    // The CR of a maximal line arriving in its own chunk is not an overflow.
    expect(await split([max, '\r', '\n'])).toEqual([line(max)]);
  });

  it('drops a huge line while it streams in, byte by byte or in big chunks', async () => {
    const huge = Buffer.alloc(1_000_000, 0x55);
    const chunks = [...cut(huge, Array.from({ length: 300 }, (_, i) => i * 3331)), Buffer.from('\r\n$T*0000\r\n')];
    expect(await split(chunks)).toEqual([{ kind: 'too_long', bytes: 1_000_002 }, line('$T*0000')]);

    const splitter = new LineSplitter();
    for (let i = 0; i < 5000; i++) splitter.write(Buffer.from('x'));
    // Bounded memory: nothing of the overflowing line is held.
    expect((splitter as unknown as { partial: string }).partial.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    splitter.destroy();
  });

  it('honours a custom maxBytes', async () => {
    expect(await split(['12345678\n123456789\n'], { maxBytes: 10 })).toEqual([line('12345678'), { kind: 'too_long', bytes: 10 }]);
    expect(() => new LineSplitter({ maxBytes: 2 })).toThrow(RangeError);
  });

  it('emits an unterminated tail at end of stream, or its too_long', async () => {
    expect(await split(['a\n$T,1*ABCD'])).toEqual([line('a'), line('$T,1*ABCD')]);
    expect(await split(['a\n$T,1*ABCD\r'])).toEqual([line('a'), line('$T,1*ABCD')]);
    expect(await split(['z'.repeat(600)])).toEqual([{ kind: 'too_long', bytes: 600 }]);
  });
});
