/**
 * The perfusion record page in Chromium, from a fixed record (test/fixtures/record-view.json, a RecordView as
 * `GET /api/sessions/:id/record` answers it): a real gateway serves the screens, signs the user in and carries
 * the live stream; only the record routes are answered by the test (page.route), so every refusal the signing
 * route can give (wrong password, locked, record changed) is shown exactly once, on demand. The same page
 * against the real record and signature routes: test/e2e/record.test.ts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM build script without types
import { buildWeb } from '../../scripts/build-web.mjs';
import type { RecordSignature, RecordView } from '../../src/record/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ARTIFACTS, launchChromium, pageProblems, signIn } from './browser.js';

const FIXTURE: RecordView = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'record-view.json'), 'utf8'));
const SESSION = FIXTURE.record.session.sessionId;
const DEVICE = FIXTURE.record.console.device;
const PAGE = `#/sessions/${SESSION}?device=${DEVICE}`;

const clone = (): RecordView => JSON.parse(JSON.stringify(FIXTURE));

/** Answers the record route with `view` (and records the calls). */
async function serveRecord(page: Page, view: () => RecordView): Promise<string[]> {
  const calls: string[] = [];
  await page.route(`**/api/sessions/${SESSION}/record?*`, (route: Route) => {
    calls.push(route.request().url());
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(view()) });
  });
  return calls;
}

/** Problems the page reported, less the refusals the test provoked on purpose. */
const unexpected = (page: Page, expected: RegExp[] = []) => pageProblems(page).filter((p) => !expected.some((e) => e.test(p)));

describe('perfusion record page (fixture record)', () => {
  let gw: TestGateway;
  let browser: Browser;

  beforeAll(async () => {
    await buildWeb();
    gw = await startTestGateway({});
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('shows the header, charts, tables, hash, signature manifest with its changed mark, and the amendments', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.viewer, { width: 1280, height: 900 });
    const calls = await serveRecord(page, clone);
    await page.goto(`${gw.url}/${PAGE}`);
    await page.waitForSelector('.record-view [data-section="header"]');
    expect(calls[0]).toContain(`/api/sessions/${SESSION}/record?device=${DEVICE}`);

    const header = await page.locator('[data-section="header"]').innerText();
    for (const s of ['Trial site Leiden (ward 4)', 'gw-ward4', 'MSC-0007', 'MSC-R2', 'SN-2291-0007', '2.4.1', SESSION, 'P-014', 'Europe/Amsterdam']) expect(header).toContain(s);
    // Site time (Amsterdam, UTC+1 in November) and UTC side by side.
    expect(header).toContain('2026-11-20 09:00:00 +01:00 (2026-11-20 08:00:00Z)');
    expect(header).toContain('TR within STR ± 0.5 °C for 91.3 %');

    // Four SVG charts (flow, pressure, temperature, heparin), vector, with envelopes, means, setpoints, the
    // STR band, state bands and the three alarm raises.
    expect(await page.locator('svg.rec-svg').count()).toBe(4);
    expect(await page.locator('svg[data-chart="flow"] path.rec-envelope[data-channel="QB"]').count()).toBeGreaterThan(0);
    expect(await page.locator('svg[data-chart="flow"] path.rec-mean[data-channel="QB"]').count()).toBeGreaterThan(0);
    expect(await page.locator('svg[data-chart="flow"] path.rec-setpoint[data-channel="SQB"]').count()).toBe(1);
    // The one-minute gap (no buckets) splits the QB mean into two runs: a gap is never bridged by a line.
    expect((await page.locator('svg[data-chart="flow"] path.rec-mean[data-channel="QB"]').getAttribute('d'))!.match(/M/g)).toHaveLength(2);
    expect(await page.locator('svg[data-chart="temperature"] path.rec-band[data-around="STR"]').count()).toBeGreaterThan(0);
    expect(await page.locator('svg[data-chart="temperature"] .rec-state[data-state="PAUSED"]').count()).toBe(1);
    expect(await page.locator('svg[data-chart="pressure"] .rec-alarm').count()).toBe(3);
    expect(await page.locator('svg[data-chart="pressure"] .rec-alarm[data-priority="HIGH"]').count()).toBe(1);

    // Alarms with acknowledgement and shelving, events, commands with outcomes.
    expect(await page.locator('.rec-alarms tbody tr').count()).toBe(3);
    const air = await page.locator('.rec-alarms tr[data-rule="AIR_IN_LINE"]').innerText();
    expect(air).toContain('HIGH');
    expect(air).toContain('nurse.devries');
    expect(air).toContain('18.5 s');
    expect(await page.locator('.rec-alarms tr[data-rule="TR_DEVIATION"]').innerText()).toContain('heater cover opened for inspection');
    expect(await page.locator('.rec-events tbody tr').count()).toBe(2);
    expect(await page.locator('.rec-commands tr[data-outcome="REJ"]').innerText()).toContain('SET HEP 1.5');

    // The adverse event stands out, with its type.
    const ae = page.locator('.rec-annotations tr.rec-ae');
    expect(await ae.count()).toBe(1);
    expect(await ae.innerText()).toContain('ADVERSE EVENT: hypotension');
    expect(await page.locator('[data-section="annotations"] h2').textContent()).toBe('Annotations (3, 1 adverse event)');

    // Completeness and channel statistics.
    const comp = await page.locator('[data-section="completeness"]').innerText();
    expect(comp).toContain('23400 received of 24000 expected (97.50 %); 600 lost');
    expect(await page.locator('.rec-channels tr[data-channel="TB"]').innerText()).toMatch(/100$/);

    // The hash, the manifest with the changed mark on the signature and at the top, the amendment.
    expect(await page.locator('.rec-signbar .rec-hash').innerText()).toBe(FIXTURE.sha256);
    expect(await page.locator('.rec-banner[data-kind="changed"]').innerText()).toContain('CHANGED SINCE SIGNED');
    const sig = page.locator('.rec-manifest tbody tr');
    expect(await sig.count()).toBe(1);
    const sigText = await sig.innerText();
    for (const s of ['Anna de Vries', 'nurse.devries', 'operator', 'Authored', FIXTURE.signatures[0].atUtc, '2026-11-20 09:45:00 +01:00', 'CHANGED SINCE SIGNED']) expect(sigText).toContain(s);
    expect(await sig.getAttribute('data-changed')).toBe('true');
    const amend = await page.locator('.rec-amendments tbody tr').innerText();
    expect(amend).toContain('annotation.add');
    expect(amend).toContain('late entry: order given verbally');
    // The signatures come after the record, the amendments after the signatures.
    const order = await page.locator('.rec-body > [data-section]').evaluateAll((els) => els.map((e) => e.getAttribute('data-section')));
    expect(order).toEqual(['header', 'sign', 'trends', 'alarms', 'events', 'commands', 'annotations', 'completeness', 'signatures', 'amendments']);

    // A viewer reads but does not sign.
    expect(await page.locator('[data-action="sign"]').count()).toBe(0);
    expect(await page.locator('.rec-signbar [data-why="role"]').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'record-fixture.png'), fullPage: true });
    expect(unexpected(page)).toEqual([]);
  });

  it('signs through the dialog: the statement, the hash shown, each refusal explained, then the new manifest entry', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.operator);
    let current = clone();
    await serveRecord(page, () => current);
    const posted: Array<{ body: Record<string, unknown>; auth: string | undefined }> = [];
    const answers: Array<(route: Route) => Promise<void>> = [
      (route) => route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify({ error: 'signature_refused', message: 'wrong signing password' }) }),
      (route) => route.fulfill({ status: 423, contentType: 'application/json', headers: { 'retry-after': '900' }, body: JSON.stringify({ error: 'signing_locked', message: 'signing locked for 15 min' }) }),
      (route) => route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: 'record_changed', message: 'the record changed' }) }),
      (route) => {
        const signature: RecordSignature = {
          auditId: 777, user: 'test-operator', printedName: 'Test Operator', role: 'operator', meaning: 'reviewed', at: Date.now(),
          atUtc: new Date().toISOString(), atLocal: '2026-12-02 16:00:00 +01:00', recordSha256: current.sha256, changedSince: false,
        };
        current = { ...current, signatures: [...current.signatures, signature] };
        return route.fulfill({ status: 201, contentType: 'application/json', body: JSON.stringify({ signature, view: current }) });
      },
    ];
    await page.route(`**/api/sessions/${SESSION}/signatures`, (route) => {
      posted.push({ body: route.request().postDataJSON(), auth: route.request().headers().authorization });
      return answers[posted.length - 1](route);
    });
    await page.goto(`${gw.url}/${PAGE}`);
    await page.click('[data-action="sign"]');
    const dlg = page.locator('dialog.sign-dialog');
    await dlg.waitFor();
    expect(await dlg.locator('input[name="password"]').getAttribute('type')).toBe('password');
    expect(await dlg.locator('input[name="password"]').getAttribute('autocomplete')).toBe('off');
    expect(await dlg.locator('select[name="meaning"] option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['reviewed', 'approved', 'authored']);
    expect(await dlg.locator('.rec-hash').innerText()).toBe(FIXTURE.sha256);
    await dlg.locator('select[name="meaning"]').selectOption('approved');
    expect(await dlg.locator('.sign-statement').innerText()).toMatch(/I, test-operator, confirm that I approved .*legally binding equivalent of my handwritten signature/);
    await dlg.locator('select[name="meaning"]').selectOption('reviewed');

    const submit = async (password: string) => {
      const n = posted.length;
      await dlg.locator('input[name="password"]').fill(password);
      await dlg.locator('[data-action="confirm-sign"]').click();
      await expect.poll(() => posted.length).toBe(n + 1);
    };
    await submit('wrong one');
    await dlg.locator('[data-refusal="wrong_password"]').waitFor();
    expect(await dlg.locator('.sign-error').innerText()).toContain('Wrong signing password: nothing was signed');
    // The dialog stays open and the password is cleared for the next try.
    expect(await dlg.locator('input[name="password"]').inputValue()).toBe('');
    expect(posted[0].body).toEqual({ meaning: 'reviewed', password: 'wrong one', recordSha256: FIXTURE.sha256, device: DEVICE });
    expect(posted[0].auth).toBe(`Bearer ${gw.tokens.operator}`);

    await submit('wrong again');
    await dlg.locator('[data-refusal="locked"]').waitFor();
    expect(await dlg.locator('.sign-error').innerText()).toMatch(/Signing is locked after too many wrong passwords until \d\d:\d\d:\d\d \(15 min\)/);

    await submit('right but late');
    await dlg.locator('[data-refusal="record_changed"]').waitFor();
    expect(await dlg.locator('.sign-error').innerText()).toContain('The record changed since you opened it');
    expect(await dlg.locator('[data-action="reload-record"]').count()).toBe(1);

    await submit('correct horse');
    await dlg.waitFor({ state: 'detached' });
    await page.waitForSelector('.rec-manifest tbody tr[data-audit-id="777"]');
    const row = await page.locator('.rec-manifest tr[data-audit-id="777"]').innerText();
    for (const s of ['Test Operator', 'test-operator', 'Reviewed', '2026-12-02 16:00:00 +01:00', '✓ matches the record']) expect(row).toContain(s);
    expect(await page.locator('.record-view > .cmd-result').innerText()).toContain('Signed: Reviewed by Test Operator');
    expect(unexpected(page, [/^403 POST .*signatures$/, /^423 POST .*signatures$/, /^409 POST .*signatures$/])).toEqual([]);
  });

  it('reloads the record when the signature is stored but the gateway answers without a view', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.operator);
    let current = clone();
    const calls = await serveRecord(page, () => current);
    await page.route(`**/api/sessions/${SESSION}/signatures`, (route) => {
      const signature: RecordSignature = {
        auditId: 778, user: 'test-operator', printedName: 'Test Operator', role: 'operator', meaning: 'approved', at: Date.now(),
        atUtc: new Date().toISOString(), atLocal: '2026-12-02 16:05:00 +01:00', recordSha256: current.sha256, changedSince: false,
      };
      current = { ...current, signatures: [...current.signatures, signature] };
      return route.fulfill({ status: 201, contentType: 'application/json', body: JSON.stringify({ signature, view: null }) });
    });
    await page.goto(`${gw.url}/${PAGE}`);
    await page.click('[data-action="sign"]');
    await page.locator('dialog.sign-dialog select[name="meaning"]').selectOption('approved');
    await page.fill('dialog.sign-dialog input[name="password"]', 'correct horse');
    await page.click('dialog.sign-dialog [data-action="confirm-sign"]');
    await page.waitForSelector('.rec-manifest tbody tr[data-audit-id="778"]');
    expect(calls).toHaveLength(2);
    expect(await page.locator('.rec-manifest tr[data-audit-id="778"]').innerText()).toContain('Approved');
    expect(unexpected(page)).toEqual([]);
  });

  it('downloads the PDF with the token and the server\'s file name', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.viewer);
    await serveRecord(page, clone);
    const auths: Array<string | undefined> = [];
    let pdfHash = FIXTURE.sha256;
    await page.route(`**/api/sessions/${SESSION}/record.pdf?*`, (route) => {
      auths.push(route.request().headers().authorization);
      return route.fulfill({
        status: 200, body: '%PDF-1.4\n% fixture\n%%EOF\n',
        headers: { 'content-type': 'application/pdf', 'content-disposition': `attachment; filename="${DEVICE}_${SESSION}_record.pdf"`, 'x-record-sha256': pdfHash },
      });
    });
    await page.goto(`${gw.url}/${PAGE}`);
    await page.waitForSelector('.rec-signbar');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-action="pdf"]')]);
    expect(download.suggestedFilename()).toBe(`${DEVICE}_${SESSION}_record.pdf`);
    expect(readFileSync(await download.path(), 'utf8')).toMatch(/^%PDF-1\.4/);
    expect(auths).toEqual([`Bearer ${gw.tokens.viewer}`]);
    expect(await page.locator('.record-view > .cmd-result').getAttribute('data-kind')).toBe('ok');
    expect(await page.locator('.record-view > .cmd-result').innerText()).toContain(`PDF downloaded (record SHA-256 ${FIXTURE.sha256.slice(0, 12)}`);

    // A PDF made from a newer version of the record than the one on the screen says so.
    pdfHash = 'f'.repeat(64);
    const [second] = await Promise.all([page.waitForEvent('download'), page.click('[data-action="pdf"]')]);
    expect(second.suggestedFilename()).toBe(`${DEVICE}_${SESSION}_record.pdf`);
    await expect.poll(() => page.locator('.record-view > .cmd-result').getAttribute('data-kind')).toBe('rej');
    expect(await page.locator('.record-view > .cmd-result').innerText()).toContain('NEWER version of the record');

    // Two PDFs are being made already: the gateway says busy, and the page when to try again.
    await page.unroute(`**/api/sessions/${SESSION}/record.pdf?*`);
    await page.route(`**/api/sessions/${SESSION}/record.pdf?*`, (route) => route.fulfill({
      status: 503, contentType: 'application/json', headers: { 'retry-after': '7' }, body: JSON.stringify({ error: 'busy', message: 'two record PDFs are being made' }),
    }));
    await page.click('[data-action="pdf"]');
    await expect.poll(() => page.locator('.record-view > .cmd-result').innerText()).toBe('PDF not downloaded: the gateway is making other PDFs; try again in 7 s.');
    expect(unexpected(page, [/^503 GET .*\/record\.pdf$/])).toEqual([]);
  });

  it('offers no signing while the session runs, and says why', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.operator);
    await serveRecord(page, () => {
      const v = clone();
      v.record.session.running = true;
      v.record.session.endedAt = null;
      v.signatures = [];
      v.amendments = [];
      v.changedSinceSigned = false;
      return v;
    });
    await page.goto(`${gw.url}/${PAGE}`);
    await page.waitForSelector('.rec-signbar');
    expect(await page.locator('[data-action="sign"]').count()).toBe(0);
    expect(await page.locator('.rec-signbar [data-why="running"]').innerText()).toContain('the session is still running');
    expect(await page.locator('.rec-banner[data-kind="running"]').count()).toBe(1);
    expect(await page.locator('[data-section="header"]').innerText()).toContain('still running');
    expect(await page.locator('.rec-manifest').count()).toBe(0);
    expect(await page.locator('[data-section="signatures"]').innerText()).toContain('Not signed yet.');
  });

  it('says why when the record cannot be loaded', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.viewer);
    await page.route(`**/api/sessions/NOPE/record*`, (route) => route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: 'not_found', message: 'no session NOPE on MSC-0007' }) }));
    await page.goto(`${gw.url}/#/sessions/NOPE?device=${DEVICE}`);
    await page.waitForSelector('.rec-error');
    expect(await page.locator('.rec-error').innerText()).toContain('No such session: no session NOPE on MSC-0007');
  });

  it('links to the record from a console\'s session list and from the replay screen', async () => {
    const page = await signIn(browser, gw.url, gw.tokens.engineer);
    await serveRecord(page, clone);
    const started = Date.parse(FIXTURE.record.session.startedAt);
    const list = [
      { key: 11, sessionId: 'S-20261119-03', device: DEVICE, startedAt: started - 86_400_000, endedAt: started - 80_000_000, endReason: 'ENDED', participant: 'P-013', running: false },
      { key: 12, sessionId: SESSION, device: DEVICE, startedAt: started, endedAt: started + 2_400_000, endReason: 'ENDED', participant: 'P-014', running: false },
    ];
    const queries: string[] = [];
    await page.route('**/api/sessions?*', (route) => {
      queries.push(new URL(route.request().url()).search);
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ sessions: list }) });
    });
    await page.goto(`${gw.url}/#/console/${DEVICE}`);
    await page.click('details[data-panel="sessions"] > summary');
    await page.waitForSelector('table.sessions tbody tr');
    // Newest first, each with its participant and a link to its record.
    expect(await page.locator('table.sessions tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session')))).toEqual([SESSION, 'S-20261119-03']);
    expect(queries[0]).toContain(`device=${DEVICE}`);
    expect(await page.locator(`table.sessions tr[data-session="${SESSION}"]`).innerText()).toContain('P-014');
    await page.click(`table.sessions tr[data-session="${SESSION}"] a[data-action="record"]`);
    await page.waitForSelector('.record-view [data-section="header"]');
    expect(new URL(page.url()).hash).toBe(PAGE);

    // Replay: the chosen session's "Record" link.
    await page.route(`**/api/devices/${DEVICE}/sessions`, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ sessions: [{ sessionId: SESSION, from: started, to: started + 2_400_000, states: ['RUNNING', 'ENDED'] }] }) }));
    await page.route('**/api/devices', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ devices: [{ id: DEVICE }] }) }));
    await page.goto(`${gw.url}/#/replay/${DEVICE}`);
    await page.waitForSelector(`select[name="session"] option[value="${SESSION}"]`, { state: 'attached' });
    const link = page.locator('.rp-choose a[data-action="record"]');
    await link.waitFor();
    expect(await link.getAttribute('href')).toBe(PAGE);
    await link.click();
    await page.waitForSelector('.record-view [data-section="header"]');
    // The console view's chart prefill asks the gateway for a console it has never seen.
    expect(unexpected(page, [/^404 GET \/api\/devices\/MSC-0007\/telemetry$/])).toEqual([]);
  });
});
