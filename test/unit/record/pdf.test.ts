/**
 * The record PDF read back as a reader gets it: rendered to a file, then `pdftotext -layout` and `pdfinfo`
 * (poppler-utils) say what is on the pages. The first two pages are also rendered to PNG in
 * test/e2e/artifacts/ for a look at the charts.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { renderRecordPdf } from '../../../src/record/pdf.js';
import { pdfText } from '../../../src/record/pdf/text.js';
import type { RecordView } from '../../../src/record/types.js';
import { recordView, SHA_NOW, SHA_OLD } from './pdfFixture.js';

const dir = mkdtempSync(join(tmpdir(), 'record-pdf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function render(view: RecordView, name: string): Promise<{ file: string; text: string; pages: number }> {
  const file = join(dir, `${name}.pdf`);
  await pipeline(renderRecordPdf(view), createWriteStream(file));
  const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
  const pages = Number(/^Pages:\s+(\d+)/m.exec(info)?.[1]);
  return { file, text, pages };
}

/** Whitespace-insensitive: -layout spreads table cells over columns and lines. */
const squash = (s: string) => s.replace(/\s+/g, ' ');

/**
 * The words of `phrase` in order, with at most `gap` other words between two of them: a wrapped table cell
 * comes back from -layout interleaved with its neighbours' lines.
 */
function words(text: string, phrase: string, gap = 12): boolean {
  const esc = phrase.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(esc.join(`\\s+(?:\\S+\\s+){0,${gap}}?`)).test(text);
}

describe('renderRecordPdf', () => {
  it('prints every section of the record, readable back as text', async () => {
    const view = recordView({ buckets: 1500 });
    const { file, text, pages } = await render(view, 'record');
    expect(readFileSync(file).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const flat = squash(text);

    // Header.
    for (const s of ['Perfusion record', 'gw-icu3-a', 'MSC-0007', 'MSC-ALS 3', 'SN-2026-00417', '3.2.1', 'S-2026-1202-A', 'P-0042']) expect(flat).toContain(s);
    expect(flat).toContain('Charit\u00e9 ICU 3 \u2013 Berlin');
    expect(flat).toContain('2026-12-02 08:00:00 UTC');
    expect(flat).toContain('2026-12-02 09:00:00 +01:00');
    expect(flat).toContain('2026-12-02 12:10:00 UTC');
    expect(flat).toContain('4:10:00');
    expect(flat).toMatch(/RUNNING 3:50:00 92\.0 %/);
    expect(flat).toMatch(/PAUSED 0:10:00 4\.0 %/);
    // Charts: titles, units, the local time axis (09:00 local is the session start).
    for (const s of ['Blood flow QB and setpoint SQB', 'Pressures PA, PV, TMP, DPR', 'Heparin rate HEP', 'mL/min', 'mmHg', 'STR \u00b1 0.5 \u00b0C']) expect(flat).toContain(s);
    expect(flat).toContain('site local time, Europe/Berlin (UTC+01:00');
    expect(flat).toMatch(/10:00 .*11:00 .*12:00/);
    // Alarms, with the shelving reason and who acknowledged.
    for (const rule of ['TR_DEVIATION', 'PV_HIGH', 'DPR_HIGH']) expect(flat).toContain(rule);
    expect(words(flat, 'shelved 11:16:00 by dr.lee until 11:26:00: Return line kinked at the patient, repositioning')).toBe(true);
    expect(words(flat, '09:45:42 by nurse.kim after 42 s')).toBe(true);
    expect(flat).toContain('not acknowledged');
    // Device events.
    expect(flat).toContain('PUMP_PAUSED');
    // Commands: verb, user, reason and outcome.
    expect(flat).toMatch(/SET TR 37\.5/);
    expect(flat).toContain('perf.jones');
    expect(words(flat, 'SET TR 37.5 perf.jones Raise reactor temperature per protocol step 4 REJ')).toBe(true);
    // Annotations and the adverse event, marked.
    expect(words(flat, 'Patient repositioned; arterial access line checked and re-taped.')).toBe(true);
    expect(words(flat, 'ADVERSE EVENT BP 82/45 mmHg')).toBe(true);
    expect(words(flat, 'ADVERSE EVENT hypotension', 20)).toBe(true);
    // Completeness.
    expect(flat).toContain('99.80 %');
    expect(flat).toContain('150000');
    // The record hash, whole on one line, and each signature's.
    expect(text.split('\n').some((l) => l.trim() === SHA_NOW)).toBe(true);
    expect(text).toMatch(new RegExp(`\\b${SHA_OLD}\\b`));
    // Signature manifest.
    expect(flat).toContain('Dana Jones \u2014 AUTHORED');
    expect(flat).toContain('Dr. Amelia Lee \u2014 REVIEWED');
    expect(flat).toContain('2026-12-02 14:20:00 +01:00');
    expect(flat).toContain('CHANGED SINCE SIGNED');
    expect(flat).not.toContain('Not signed');
    // Amendment and its reason.
    expect(words(flat, 'annotation.add adverse_event hypotension added Late entry after review of the nursing chart')).toBe(true);
    // Page N of M on every page, no more, no fewer.
    expect(pages).toBeGreaterThanOrEqual(3);
    for (let n = 1; n <= pages; n++) expect(text).toContain(`page ${n} of ${pages}`);
    expect(text).not.toContain(`page ${pages + 1} of`);
    expect(text.match(/S-2026-1202-A/g)!.length).toBeGreaterThanOrEqual(pages);

    // A look at the charts.
    const artifacts = join(process.cwd(), 'test', 'e2e', 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    execFileSync('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '2', file, join(artifacts, 'record-pdf')]);
  });

  it('says "Not signed" for an unsigned record, and a running session is provisional', async () => {
    const view = recordView({ buckets: 300 });
    view.signatures = [];
    view.amendments = [];
    view.changedSinceSigned = false;
    view.record.session.running = true;
    view.record.session.endedAt = null;
    const flat = squash((await render(view, 'unsigned')).text);
    expect(flat).toContain('Not signed');
    expect(flat).toContain('SESSION STILL RUNNING');
    expect(flat).not.toContain('CHANGED SINCE SIGNED');
  });

  it('renders a record with nothing in it: no chart, empty tables said in words, unknown zone as UTC', async () => {
    const view = recordView({ buckets: 10 });
    const r = view.record;
    r.trends = { bucketMs: 1000, t: [], series: {} };
    r.alarms = []; r.events = []; r.commands = []; r.annotations = []; r.channels = {}; r.states = [];
    r.site = { name: null, gateway: null, timeZone: 'Not/AZone' };
    r.console = { device: 'MSC-0009', model: null, serialNo: null, fw: null };
    r.session.stateMs = {};
    r.completeness = { received: 0, expected: 0, stored: 0, keepAlivesAssumed: 0, lost: 0, ratio: null, restarts: 0 };
    r.temperature = { trInBandPct: null, coveredMs: 0 };
    view.signatures = []; view.amendments = []; view.changedSinceSigned = false;
    const { text, pages } = await render(view, 'empty');
    const flat = squash(text);
    for (const s of ['No telemetry to chart.', 'No alarm was raised during the session.', 'No device event during the session.',
      'No command was sent during the session.', 'No annotation for the session.', 'No telemetry in the session.', 'Not signed',
      'not reported', '2026-12-02 08:00:00 +00:00']) expect(flat).toContain(s);
    expect(words(flat, 'Site time zone UTC (the configured zone Not/AZone is unknown)')).toBe(true);
    expect(pages).toBeGreaterThanOrEqual(1);
    expect(text).toContain(`page ${pages} of ${pages}`);
  });

  it('shows what the standard fonts cannot as "?" and keeps the rest, without crashing', async () => {
    const view = recordView({ buckets: 200 });
    view.record.annotations[0].text = 'Temp 37 \u00b0C ok \u2713 \u4e2d\u6587 \ud83d\ude00 \u2014 done\tnow';
    view.record.session.participant = 'P-\u0416';
    view.signatures[1].printedName = 'Dr. \u0141ukasz \u00c5berg';
    const flat = squash((await render(view, 'unicode')).text);
    expect(flat).toContain('Temp 37 \u00b0C ok ? ?? ? \u2014 done now');
    expect(flat).toContain('P-?');
    expect(flat).toContain('Dr. ?ukasz \u00c5berg');
  });

  it('maps text to WinAnsi: Latin-1 and cp1252 punctuation kept, anything else one "?" per character', () => {
    expect(pdfText('plain')).toBe('plain');
    expect(pdfText('\u00e9\u20ac\u2019\u2026')).toBe('\u00e9\u20ac\u2019\u2026');
    expect(pdfText('\u03b1\ud83d\ude00\u0007\r\nx')).toBe('???\nx');
  });

  it('breaks a table across pages with the header repeated, and a page-long note is continued, not cut', async () => {
    const view = recordView({ buckets: 200, alarms: 400 });
    const long = Array.from({ length: 900 }, (_, i) => `word${i}`).join(' ');
    view.record.annotations[0].text = long;
    const { text, pages } = await render(view, 'long');
    const headers = text.split('\n').filter((l) => /Raised\s+Rule \/ priority\s+Message/.test(l)).length;
    expect(headers).toBeGreaterThan(3);
    expect(pages).toBeGreaterThan(headers);
    const flat = squash(text);
    for (let i = 3; i < 400; i += 37) expect(flat).toContain(`Synthetic alarm ${i} `);
    expect(flat).toContain('(continued)');
    // No page holds only a heading and a table header: the long row starts where the heading is.
    expect(text.split('\f').filter((page) => page.trim() !== '').every((page) => /\d\d:\d\d:\d\d/.test(page))).toBe(true);
    expect(words(flat, Array.from({ length: 900 }, (_, i) => `word${i}`).join(' '), 40)).toBe(true);
  });

  it('renders a big session (1,500 buckets x 11 channels, 2,000 alarms, 500 events) within bounds', async () => {
    const view = recordView({ buckets: 1500, alarms: 2000, events: 500 });
    const started = performance.now();
    const file = join(dir, 'big.pdf');
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    await pipeline(renderRecordPdf(view), createWriteStream(file));
    loop.disable();
    const seconds = (performance.now() - started) / 1000;
    // The layout yields: the gateway's timers never wait for the whole record (seconds), only for a slice.
    expect(loop.max / 1e6).toBeLessThan(Math.min(1000, seconds * 1000 / 3));
    const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
    const pages = Number(/^Pages:\s+(\d+)/m.exec(info)?.[1]);
    expect(pages).toBeGreaterThan(40);
    expect(seconds).toBeLessThan(30);
  });

  it('stops laying out when the reader goes away, and fails the stream on a broken record', async () => {
    const doc = renderRecordPdf(recordView({ buckets: 300, alarms: 2000 }));
    const pageAdds: number[] = [];
    doc.on('pageAdded', () => pageAdds.push(pageAdds.length));
    await new Promise((resolve) => setTimeout(resolve, 20));
    doc.destroy();
    const at = pageAdds.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pageAdds.length).toBeLessThanOrEqual(at + 1);
    expect(pageAdds.length).toBeLessThan(60);

    const broken = recordView({ buckets: 10 });
    (broken.record as { alarms: unknown }).alarms = null;
    await expect(pipeline(renderRecordPdf(broken), createWriteStream(join(dir, 'broken.pdf')))).rejects.toThrow(TypeError);
  });
});
