/**
 * The live screens end to end: Debian's Chromium against a real gateway fed by the simulator over a
 * real mosquitto. Numerics update; a fault raises a red, flashing alarm bar within 1 s; acknowledging stops
 * the flashing; a setpoint change is confirmed (old → new) and round-trips to the device; an annotation is
 * stored; a dropped WebSocket shows DISCONNECTED and reconnects; a stopped console shows NO DATA within 3 s.
 */
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
// @ts-expect-error plain ESM build script without types
import { buildWeb } from '../../scripts/build-web.mjs';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { ARTIFACTS, launchChromium, pageProblems, signIn } from './browser.js';

const FAST_PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const DEVICE = 'MSC-E2E1';

describe('live screens in Chromium', () => {
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let sim: Simulator;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await buildWeb();
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-e2e-live' } });
    sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, deviceIds: [DEVICE, 'MSC-E2E2'], autoRun: { sessionId: 'S-E2E-LIVE' },
      phases: FAST_PHASES, seed: 21,
    });
    browser = await launchChromium();
    await waitFor(async () => (await gw.get(`/api/devices/${DEVICE}`)).body.state === 'RUNNING', { timeoutMs: 20_000, message: 'console RUNNING' });
    page = await signIn(browser, gw.url, gw.tokens.operator);
  });

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
  });

  it('serves the screen with a strict CSP and no inline script; data routes stay protected', async () => {
    const r = await fetch(gw.url + '/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await r.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const js = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)![1];
    const asset = await fetch(gw.url + js);
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(gw.url + '/api/me')).status).toBe(401);
    expect((await fetch(gw.url + `/api/devices/${DEVICE}/telemetry.csv?from=0&to=1`, { headers: { authorization: `Bearer ${gw.tokens.operator}` } })).status).toBe(403);
  });

  it('shows every console on the overview and live numerics that update', async () => {
    await page.waitForSelector(`a.tile[data-device="${DEVICE}"]`);
    await page.waitForSelector('a.tile[data-device="MSC-E2E2"]');
    await page.click(`a.tile[data-device="${DEVICE}"]`);
    const qb = page.locator('.num[data-channel="QB"] .num-value');
    await expect.poll(async () => Number(await qb.textContent()), { timeout: 10_000 }).toBeGreaterThan(50);
    const first = await page.locator('.num[data-channel="PV"] .num-value').textContent();
    await expect.poll(async () => page.locator('.num[data-channel="PV"] .num-value').textContent(), { timeout: 5_000 }).not.toBe(first);
    await expect(page.locator('.cv-state').textContent()).resolves.toBe('RUNNING');
    await expect(page.locator('.cv-session').textContent()).resolves.toContain('S-E2E-LIVE');
    expect(await page.locator('.data-status').textContent()).toBe('');
    // PH and DO are reported by the simulator, so their numerics are shown.
    expect(await page.locator('.num[data-channel="PH"]').isVisible()).toBe(true);
  });

  it('changes a setpoint after a confirmation showing old and new values, and shows the device answer', async () => {
    await page.fill('form[data-setpoint="QB"] input', '160');
    await page.click('[data-action="set-QB"]');
    const change = page.locator('dialog .confirm-change');
    await expect(change.textContent()).resolves.toMatch(/QB 150\s*→\s*160 mL\/min/);
    await page.click('dialog [data-action="confirm"]');
    await expect.poll(() => page.locator('.controls .cmd-result').textContent(), { timeout: 5_000 }).toMatch(/SET QB 150 → 160: OK/);
    await expect.poll(() => page.locator('.num[data-channel="QB"] .num-sp').textContent(), { timeout: 5_000 }).toBe('set 160');
    expect(sim.consoles[0].setpoints.QB).toBe(160);
  });

  it('raises a red alarm bar flashing at ~2 Hz within 1 s of a fault, and acknowledging makes it steady', async () => {
    const t0 = Date.now();
    sim.apply({ action: 'air_in_line', device: DEVICE, duration: '60s' });
    const bar = page.locator('.alarm[data-rule="AIR_IN_LINE"]');
    await bar.waitFor({ state: 'visible', timeout: 3_000 });
    const elapsed = Date.now() - t0;
    expect(elapsed, `alarm bar ${elapsed} ms after the fault`).toBeLessThan(1_000);
    expect(await bar.getAttribute('data-priority')).toBe('HIGH');
    expect(await bar.getAttribute('data-state')).toBe('UNACK');
    const style = await bar.evaluate((el) => {
      const s = getComputedStyle(el);
      return { name: s.animationName, duration: s.animationDuration, bg: s.backgroundColor };
    });
    expect(style.name).toBe('flash-high');
    expect(style.duration).toBe('0.5s');
    const [r, g, b] = style.bg.match(/\d+/g)!.map(Number);
    expect(r).toBeGreaterThan(g + 40);
    expect(r).toBeGreaterThan(b + 40);
    await page.screenshot({ path: join(ARTIFACTS, 'live-console-alarm.png') });

    await bar.locator('[data-action="ack"]').click();
    await expect.poll(() => bar.getAttribute('data-state'), { timeout: 3_000 }).toBe('ACKED');
    const after = await bar.evaluate((el) => ({ name: getComputedStyle(el).animationName, bg: getComputedStyle(el).backgroundColor }));
    expect(after.name).toBe('none');
    expect(after.bg).toBe('rgb(224, 0, 27)');
    const alarm = (await gw.get(`/api/alarms/${encodeURIComponent(`${DEVICE}:AIR_IN_LINE`)}`)).body.alarm;
    expect(alarm).toMatchObject({ state: 'ACKED', ackedBy: 'test-operator' });
  });

  it('marks a clinical event at the current time', async () => {
    const before = Date.now();
    await page.click('[data-action="annotate"]');
    await page.fill('dialog textarea[name="text"]', 'Patient shivering, blanket given');
    await page.selectOption('dialog select[name="kind"]', 'intervention');
    await page.click('dialog [data-action="confirm"]');
    await expect.poll(() => page.locator('.console-view > .cmd-result').textContent()).toMatch(/Event marked/);
    const { body } = await gw.get(`/api/annotations?device=${DEVICE}`);
    const note = body.annotations.find((a: { text: string }) => a.text === 'Patient shivering, blanket given');
    expect(note).toMatchObject({ kind: 'intervention', session: 'S-E2E-LIVE', user: 'test-operator' });
    expect(note.t).toBeGreaterThanOrEqual(before - 1000);
  });

  it('shows DISCONNECTED when the WebSocket drops and reconnects by itself', async () => {
    await gw.gateway.live.stop();
    await page.waitForSelector('.data-status[data-kind="disconnected"]', { timeout: 5_000 });
    expect(await page.locator('header .conn').textContent()).toBe('DISCONNECTED');
    gw.gateway.live.start(gw.gateway.http.server);
    await page.waitForSelector('header .conn[data-state="open"]', { timeout: 10_000 });
    await page.waitForSelector('.data-status[data-kind="live"]', { state: 'attached', timeout: 5_000 });
  });

  it('looks right at 1920x1080 and on the overview', async () => {
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.screenshot({ path: join(ARTIFACTS, 'live-console-1920.png') });
    await page.click('a.back');
    await page.waitForSelector('a.tile[data-device="MSC-E2E1"] .tile-alarm[data-priority="HIGH"]');
    await page.screenshot({ path: join(ARTIFACTS, 'live-overview-1920.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: join(ARTIFACTS, 'live-overview.png') });
    await page.click(`a.tile[data-device="${DEVICE}"]`);
    await page.waitForSelector('.console-view');
  });

  it('marks a value outside its alarm limits, on the console and on the overview', async () => {
    sim.apply({ action: 'venous_kink', device: 'MSC-E2E2', duration: '60s' });
    await page.evaluate(() => { location.hash = '#/console/MSC-E2E2'; });
    const pv = page.locator('.num[data-channel="PV"]');
    await expect.poll(() => pv.getAttribute('data-out'), { timeout: 10_000 }).toBe('high');
    expect(await pv.locator('.num-flag').textContent()).toBe('▲ HIGH');
    expect(await pv.locator('.num-lim').textContent()).toBe('limits 20–250');
    await page.click('a.back');
    await expect.poll(() => page.locator('a.tile[data-device="MSC-E2E2"] .g:has([data-channel="PV"])').getAttribute('data-out')).toBe('high');
    await page.click(`a.tile[data-device="${DEVICE}"]`);
    await page.waitForSelector(`.console-view[data-device="${DEVICE}"]`);
  });

  it('greys the numerics and says NO DATA within 3 s when the console stops', async () => {
    const t0 = Date.now();
    await sim.stop();
    await page.waitForSelector('.data-status[data-kind="nodata"]', { timeout: 5_000 });
    const elapsed = Date.now() - t0;
    expect(elapsed, `NO DATA ${elapsed} ms after the console stopped`).toBeLessThan(3_000);
    expect(await page.locator('.data-status').textContent()).toMatch(/^NO DATA — last sample \d+ s ago$/);
    expect(await page.locator('.console-view').getAttribute('class')).toContain('stale');
    const grey = await page.locator('.num[data-channel="QB"] .num-value').evaluate((el) => getComputedStyle(el).color);
    expect(grey).toBe('rgb(89, 99, 108)');
    await page.screenshot({ path: join(ARTIFACTS, 'live-console-nodata.png') });
    expect(pageProblems(page)).toEqual([]);
  });
});
