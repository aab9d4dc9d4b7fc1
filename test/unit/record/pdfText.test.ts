/** The record PDF's times, numbers, line breaking and line gaps. */
import PDFDocument from 'pdfkit';
import { describe, expect, it } from 'vitest';
import { compactFinishedPages } from '../../../src/record/pdf.js';
import { runs } from '../../../src/record/pdf/charts.js';
import { formatDuration, formatLocal, formatSpan, formatUtc, formatValue, TableTime, usableTimeZone } from '../../../src/record/pdf/text.js';
import { TextMeasure } from '../../../src/record/pdf/wrap.js';

describe('record PDF times', () => {
  it('formats site local time with the offset in force, across a daylight-saving change', () => {
    // Europe/Berlin goes from +01:00 to +02:00 at 2026-03-29 01:00 UTC.
    const change = Date.UTC(2026, 2, 29, 1, 0, 0);
    expect(formatLocal(change - 1000, 'Europe/Berlin')).toBe('2026-03-29 01:59:59 +01:00');
    expect(formatLocal(change, 'Europe/Berlin')).toBe('2026-03-29 03:00:00 +02:00');
    expect(formatLocal(Date.UTC(2026, 11, 2, 8, 0, 0), 'Asia/Kolkata')).toBe('2026-12-02 13:30:00 +05:30');
    expect(formatLocal(Date.UTC(2026, 11, 2, 8, 0, 0), 'America/St_Johns')).toBe('2026-12-02 04:30:00 -03:30');
    expect(formatLocal(Date.UTC(2026, 11, 2, 8, 0, 0, 999), 'UTC')).toBe('2026-12-02 08:00:00 +00:00');
    expect(formatUtc(Date.UTC(2026, 11, 2, 8, 0, 0, 999))).toBe('2026-12-02 08:00:00 UTC');
  });

  it('falls back to UTC for a zone Intl does not know', () => {
    expect(usableTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(usableTimeZone('Mars/Olympus_Mons')).toBe('UTC');
  });

  it('prints table times short on the first day, with the date after midnight and the offset after a change', () => {
    const tt = new TableTime('Europe/Berlin', Date.UTC(2026, 2, 28, 20, 0, 0));
    expect(tt.format(Date.UTC(2026, 2, 28, 22, 30, 5))).toBe('23:30:05');
    expect(tt.format(Date.UTC(2026, 2, 29, 0, 15, 0))).toBe('2026-03-29 01:15:00');
    expect(tt.format(Date.UTC(2026, 2, 29, 1, 15, 0))).toBe('2026-03-29 03:15:00 +02:00');
    expect(tt.format(null)).toBe('-');
  });

  it('formats durations, spans and values', () => {
    expect(formatDuration(4 * 3600_000 + 10 * 60_000 + 5_400)).toBe('4:10:05');
    expect(formatDuration(27 * 3600_000)).toBe('27:00:00');
    expect(formatSpan(850)).toBe('850 ms');
    expect(formatSpan(42_000)).toBe('42 s');
    expect(formatSpan(187_000)).toBe('3 min 07 s');
    expect(formatSpan(3_720_000)).toBe('1 h 02 min');
    expect(formatSpan(null)).toBe('-');
    expect(formatValue(35.62)).toBe('35.62');
    expect(formatValue(250)).toBe('250');
    expect(formatValue(1 / 3)).toBe('0.333');
    expect(formatValue(-0.0001)).toBe('0');
    expect(formatValue('ON')).toBe('ON');
    expect(formatValue(null)).toBe('-');
  });
});

describe('record PDF line breaking', () => {
  const doc = new PDFDocument({ size: 'A4' });
  const m = new TextMeasure(doc);

  it('measures as pdfkit does, never narrower', () => {
    const s = 'Reactor temperature deviates from setpoint AVAWAY';
    const pdfkit = doc.font('Helvetica').fontSize(7.5).widthOfString(s);
    const ours = m.width(s, 'Helvetica', 7.5);
    expect(ours).toBeGreaterThanOrEqual(pdfkit - 1e-9);
    expect(ours).toBeLessThan(pdfkit * 1.05);
  });

  it('breaks at spaces, keeps newlines, and cuts a word only when it alone is too wide', () => {
    const lines = m.wrap('one two three four five six\nseven', 'Helvetica', 10, m.width('one two three', 'Helvetica', 10) + 0.01);
    expect(lines).toEqual(['one two three', 'four five six', 'seven']);
    const hash = 'a'.repeat(64);
    const cut = m.wrap(hash, 'Courier', 10, m.width('a'.repeat(20), 'Courier', 10) + 0.01);
    expect(cut).toEqual(['a'.repeat(20), 'a'.repeat(20), 'a'.repeat(20), 'a'.repeat(4)]);
    expect(m.wrap('', 'Helvetica', 10, 100)).toEqual(['']);
  });
});

describe('trend line runs', () => {
  it('breaks a line at a null bucket and at a missing one', () => {
    const t = [0, 10, 20, 30, 40, 70, 80];
    const v = [1, 2, null, 4, 5, 6, 7];
    expect(runs(t, 10, (i) => v[i] !== null)).toEqual([[0, 1], [3, 4], [5, 6]]);
    expect(runs([], 10, () => true)).toEqual([]);
    expect(runs([5], 10, () => true)).toEqual([[0, 0]]);
  });
});

describe('buffered page memory', () => {
  it('joins a finished page\'s content into one buffer (pdfkit\'s page buffer still has the shape relied on)', () => {
    const doc = new PDFDocument({ size: 'A4', bufferPages: true });
    compactFinishedPages(doc);
    for (let i = 0; i < 50; i++) doc.text(`line ${i}`, 40, 40 + i * 10, { lineBreak: false });
    const pages = (doc as unknown as { _pageBuffer: Array<{ content: { buffer: Uint8Array[] } }> })._pageBuffer;
    const pieces = pages[0].content.buffer.length;
    expect(pieces).toBeGreaterThan(50);
    const bytes = Buffer.concat(pages[0].content.buffer).toString('latin1');
    doc.addPage();
    expect(pages[0].content.buffer).toHaveLength(1);
    expect(Buffer.from(pages[0].content.buffer[0]).toString('latin1')).toBe(bytes);
    doc.end();
  });
});
