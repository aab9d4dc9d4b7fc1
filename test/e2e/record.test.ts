/**
 * The perfusion record end to end: a real gateway fed by the simulator over a real mosquitto runs a session
 * with an alarm (acknowledged) and an adverse event, and ends it with END; a signing password is set with the
 * CLI (`msc-gateway users set-password`, password on stdin); in Chromium the operator opens the record from the
 * console's session list, sees its header and alarm, is refused with a wrong password, signs with the right
 * one, and sees the new manifest entry, which the audit trail holds as `record.signed`; then downloads the PDF.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
// @ts-expect-error plain ESM build script without types
import { buildWeb } from '../../scripts/build-web.mjs';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { CLI } from '../helpers/gatewayProcess.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { ARTIFACTS, launchChromium, pageProblems, signIn } from './browser.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const DEVICE = 'MSC-E2E5';
const SESSION = 'S-E2E-RECORD';
const PASSWORD = 'tulip-harbour-4711';
const PRINTED = 'Olga Operator';

/** `msc-gateway users set-password NAME --printed-name ... --data-dir DIR` with the password on stdin. */
function setSigningPassword(dataDir: string, name: string, printedName: string, password: string): Promise<{ code: number | null; out: string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, 'users', 'set-password', name, '--printed-name', printedName, '--data-dir', dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('users set-password did not exit in 20 s')); }, 20_000);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
    p.stdin.end(`${password}\n`);
  });
}

describe('perfusion record in Chromium, against the real gateway', () => {
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let sim: Simulator;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await buildWeb();
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-e2e-record' } });
    sim = await startSimulator({ transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEVICE], autoRun: { sessionId: SESSION }, phases: FAST_PHASES, seed: 11 });
    browser = await launchChromium();
    await waitFor(async () => {
      const d = (await gw.get(`/api/devices/${DEVICE}`)).body;
      return d.state === 'RUNNING' && d.values.QB?.v > 100;
    }, { timeoutMs: 20_000, message: 'RUNNING at flow' });
    // An alarm, acknowledged by the operator, and an adverse event.
    sim.apply({ action: 'air_in_line', device: DEVICE, duration: '2s' });
    const alarm = await waitFor(async () => (await gw.get(`/api/alarms?device=${DEVICE}`)).body.alarms.find((a: { rule: string }) => a.rule === 'AIR_IN_LINE'), { message: 'AIR alarm' });
    expect((await gw.post(`/api/alarms/${encodeURIComponent(alarm.id)}/ack`, {})).status).toBeLessThan(300);
    expect((await gw.post(`/api/devices/${DEVICE}/annotations`, { kind: 'adverse_event', subtype: 'hypotension', text: 'BP 85/50 after the air alarm' })).status).toBe(201);
    const seen = (await gw.get(`/api/devices/${DEVICE}`)).body.counters.telemetry;
    await waitFor(async () => (await gw.get(`/api/devices/${DEVICE}`)).body.counters.telemetry > seen + 20, { message: '2 s more samples' });
    // The session ends the way a perfusionist ends it.
    const end = await gw.post(`/api/devices/${DEVICE}/commands`, { verb: 'END', args: [], reason: 'end of treatment' });
    expect(end.body.result).toBe('OK');
    await waitFor(async () => (await gw.get(`/api/sessions?device=${DEVICE}`)).body.sessions.some((s: { sessionId: string; endedAt: number | null }) => s.sessionId === SESSION && s.endedAt !== null), { timeoutMs: 10_000, message: 'session ended' });
    const set = await setSigningPassword(gw.dataDir, 'test-operator', PRINTED, PASSWORD);
    expect(set.code, set.out).toBe(0);
    page = await signIn(browser, gw.url, gw.tokens.operator, { width: 1280, height: 900 });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
  });

  it('opens the record from the console\'s session list with its header and alarm', async () => {
    await page.goto(`${gw.url}/#/console/${DEVICE}`);
    await page.click('details[data-panel="sessions"] > summary');
    await page.click(`table.sessions tr[data-session="${SESSION}"] a[data-action="record"]`);
    await page.waitForSelector('.record-view [data-section="header"]');
    expect(new URL(page.url()).hash).toBe(`#/sessions/${SESSION}?device=${DEVICE}`);
    const header = await page.locator('[data-section="header"]').innerText();
    expect(header).toContain(DEVICE);
    expect(header).toContain(SESSION);
    expect(header).toContain('ENDED');
    const air = page.locator('.rec-alarms tr[data-rule="AIR_IN_LINE"]');
    expect(await air.count()).toBeGreaterThan(0);
    expect(await air.first().innerText()).toContain('test-operator');
    expect(await page.locator('.rec-annotations tr.rec-ae').innerText()).toContain('ADVERSE EVENT: hypotension');
    expect(await page.locator('svg[data-chart="flow"] path.rec-mean[data-channel="QB"]').count()).toBeGreaterThan(0);
    // The hash shown is the one the server reports for the record.
    const hash = await page.locator('.rec-signbar .rec-hash').innerText();
    expect((await gw.get(`/api/sessions/${SESSION}/record?device=${DEVICE}`)).body.sha256).toBe(hash);
    expect(await page.locator('.rec-manifest').count()).toBe(0);
  });

  it('refuses a wrong signing password, then signs and shows the manifest entry', async () => {
    await page.click('[data-action="sign"]');
    const dlg = page.locator('dialog.sign-dialog');
    await dlg.waitFor();
    await dlg.locator('select[name="meaning"]').selectOption('reviewed');
    await dlg.locator('input[name="password"]').fill('not-the-password');
    await dlg.locator('[data-action="confirm-sign"]').click();
    await dlg.locator('[data-refusal="wrong_password"]').waitFor();
    expect(await page.locator('.rec-manifest').count()).toBe(0);

    await dlg.locator('input[name="password"]').fill(PASSWORD);
    await dlg.locator('[data-action="confirm-sign"]').click();
    await dlg.waitFor({ state: 'detached' });
    const entry = page.locator('.rec-manifest tbody tr');
    await entry.first().waitFor();
    expect(await entry.count()).toBe(1);
    const text = await entry.innerText();
    for (const s of [PRINTED, 'test-operator', 'operator', 'Reviewed', '✓ matches the record']) expect(text).toContain(s);
    expect(await page.locator('.rec-banner[data-kind="changed"]').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'record-signed.png'), fullPage: true });

    // The signature and the refusal are in the audit trail.
    const records: Array<{ action: string; outcome: string; session: string | null; detail: Record<string, unknown> }> = (await gw.get(`/api/audit?device=${DEVICE}&limit=1000`)).body.records;
    expect(records.find((r) => r.action === 'record.signed')).toMatchObject({ outcome: 'signed', detail: { meaning: 'reviewed', printedName: PRINTED } });
    expect(records.find((r) => r.action === 'record.sign')).toMatchObject({ outcome: 'refused', detail: { why: 'wrong_password' } });
    expect(pageProblems(page).filter((p) => !/^403 POST .*\/signatures$/.test(p))).toEqual([]);
  });

  it('downloads the signed record as a PDF of the version on the screen', async () => {
    const hash = await page.locator('.rec-signbar .rec-hash').innerText();
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('[data-action="pdf"]')]);
    expect(download.suggestedFilename()).toBe(`${DEVICE}_${SESSION}_record.pdf`);
    expect(readFileSync(await download.path()).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    await expect.poll(() => page.locator('.record-view > .cmd-result').getAttribute('data-kind')).toBe('ok');
    expect(await page.locator('.record-view > .cmd-result').innerText()).toContain(`record SHA-256 ${hash.slice(0, 12)}`);
    expect(pageProblems(page).filter((p) => !/^403 POST .*\/signatures$/.test(p))).toEqual([]);
  });
});
