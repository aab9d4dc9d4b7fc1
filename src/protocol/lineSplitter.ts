/**
 * Serial bytes -> lines (ICD §1: one frame per line, CR LF). Bytes are decoded as latin1 so one byte is
 * one char and a byte count is a string length; the decoder judges the bytes afterwards.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { MAX_FRAME_BYTES } from './serial.js';

/** Re-exported for transports that only import the splitter. */
export { MAX_FRAME_BYTES };

export type SplitterOutput = { kind: 'line'; line: string } | { kind: 'too_long'; bytes: number };

/**
 * Splits on '\n' and strips one trailing '\r'; emits `{kind:'line'}` objects (empty lines are skipped).
 * Memory stays bounded: a line whose content (without CR LF) passes `maxBytes - 2` is dropped while it
 * streams in and reported ONCE, when its '\n' arrives, as `{kind:'too_long', bytes}` with its full size
 * including the terminator. Reporting at the terminator (not at the overflow) gives the exact size and
 * keeps one report per line; the ICD resynchronises at the next line anyway.
 * At end of stream a pending partial line is still emitted (a frame that lost only its CR LF passes its
 * CRC; anything else is a discard downstream), so no received byte goes unaccounted.
 */
export class LineSplitter extends Transform {
  private readonly maxContent: number;
  private partial = '';
  private dropping = false;
  private droppedBytes = 0;

  constructor(opts: { maxBytes?: number } = {}) {
    super({ readableObjectMode: true, writableObjectMode: false });
    const maxBytes = opts.maxBytes ?? MAX_FRAME_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 3) throw new RangeError(`maxBytes must be an integer >= 3, got ${maxBytes}`);
    this.maxContent = maxBytes - 2;
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const text = typeof chunk === 'string' ? Buffer.from(chunk, encoding).toString('latin1') : chunk.toString('latin1');
    let from = 0;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      if (this.dropping) {
        this.push({ kind: 'too_long', bytes: this.droppedBytes + nl - from + 1 } satisfies SplitterOutput);
        this.dropping = false;
        this.droppedBytes = 0;
      } else {
        const raw = this.partial.length > 0 ? this.partial + text.slice(from, nl) : text.slice(from, nl);
        this.partial = '';
        this.emitLine(raw, raw.length + 1);
      }
      from = nl + 1;
      nl = text.indexOf('\n', from);
    }
    if (from < text.length) this.hold(text, from);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.dropping) {
      this.push({ kind: 'too_long', bytes: this.droppedBytes } satisfies SplitterOutput);
    } else if (this.partial.length > 0) {
      this.emitLine(this.partial, this.partial.length);
    }
    this.partial = '';
    this.dropping = false;
    this.droppedBytes = 0;
    callback();
  }

  /** Keeps the unterminated tail, or starts dropping once it can no longer be a frame. */
  private hold(text: string, from: number): void {
    const tail = text.length - from;
    if (this.dropping) {
      this.droppedBytes += tail;
      return;
    }
    // One byte of slack for the '\r' that may still precede the '\n'.
    if (this.partial.length + tail > this.maxContent + 1) {
      this.dropping = true;
      this.droppedBytes = this.partial.length + tail;
      this.partial = '';
      return;
    }
    this.partial += text.slice(from);
  }

  private emitLine(raw: string, bytes: number): void {
    const line = raw.length > 0 && raw.charCodeAt(raw.length - 1) === 0x0d ? raw.slice(0, -1) : raw;
    if (line.length > this.maxContent) {
      this.push({ kind: 'too_long', bytes } satisfies SplitterOutput);
    } else if (line.length > 0) {
      this.push({ kind: 'line', line } satisfies SplitterOutput);
    }
  }
}
