/**
 * A late sample is never shown as live (docs/operator.md, "DELAYED"): a console whose samples keep arriving but
 * fall further and further behind its own clock (a backlog in front of the gateway) shows DELAYED with the age on
 * the console view and on the overview tile, and raises DATA_DELAYED (MEDIUM); when the data are on time again,
 * the screen is live again. Debian's Chromium against a real gateway and mosquitto; the console is an MQTT client
 * publishing ICD §2 payloads with the device times the test chooses.
 */
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMqttPayload } from '../../src/protocol/mqtt.js';
// @ts-expect-error plain ESM build script without types
import { buildWeb } from '../../scripts/build-web.mjs';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';
import { ARTIFACTS, launchChromium, pageProblems, signIn } from './browser.js';

const DEVICE = 'MSC-LATE1';
const topic = (kind: string) => `msc/v1/${DEVICE}/${kind}`;

describe('DELAYED on the live screens', () => {
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let console_: MqttClient;
  let browser: Browser;
  let page: Page;
  let timer: NodeJS.Timeout | null = null;
  /** How far behind its clock the console's samples are published, ms (the test moves it). */
  let lagMs = 0;
  let seq = 0;
  let published = 0;

  const activeAlarm = async (rule: string) => {
    const r = await gw.get<{ alarms: Array<{ rule: string; device: string; priority: string }> }>(`/api/alarms?state=active&device=${DEVICE}`);
    return r.body.alarms.find((a) => a.rule === rule) ?? null;
  };

  beforeAll(async () => {
    await buildWeb();
    broker = await startMosquitto();
    gw = await startTestGateway({ mqtt: { url: broker.url, clientId: 'gw-e2e-delayed' } });
    console_ = await new Promise<MqttClient>((ok, fail) => {
      const c = connect(broker.url, { clientId: 'console-late', protocolVersion: 5 });
      c.once('connect', () => ok(c));
      c.once('error', fail);
    });
    await console_.publishAsync(topic('hello'), encodeMqttPayload({ type: 'HELLO', deviceId: DEVICE, model: 'MSC-R1', fw: '1.0', icd: 1, serialNo: 'SN-LATE' }), { qos: 1, retain: true });
    await console_.publishAsync(topic('state'), encodeMqttPayload({ type: 'S', seq: ++seq, t: Date.now(), state: 'RUNNING', sessionId: 'S-LATE' }), { qos: 1 });
    // 25 Hz; each sample carries the device time at which it was "taken": now − lag.
    timer = setInterval(() => {
      const s = ++seq;
      void console_.publishAsync(topic('telemetry'), encodeMqttPayload({
        type: 'T', seq: s, t: Date.now() - lagMs, v: { QB: 150 + (s % 10), PA: -80, PV: 110, AIR: 0, BLD: 0, TR: 37, TMP: 40 },
      }), { qos: 1 }).then(() => published++);
    }, 40);
    browser = await launchChromium();
    page = await signIn(browser, gw.url, gw.tokens.operator);
  });

  afterAll(async () => {
    if (timer) clearInterval(timer);
    await console_?.endAsync();
    await browser?.close();
    await gw?.stop();
    await broker?.stop();
  });

  it('shows DELAYED with the age while samples still arrive, raises DATA_DELAYED, and is live again once on time', async () => {
    await page.waitForSelector(`a.tile[data-device="${DEVICE}"]`);
    await page.click(`a.tile[data-device="${DEVICE}"]`);
    const status = page.locator('.data-status');
    const qb = page.locator('.num[data-channel="QB"] .num-value');
    await expect.poll(async () => Number(await qb.textContent()), { timeout: 10_000 }).toBeGreaterThan(100);
    // On time for long enough for the gateway to learn the console's clock offset.
    await waitFor(async () => (await gw.get(`/api/devices/${DEVICE}`)).body.counters?.telemetry > 50, { message: 'samples on time' });
    expect(await status.textContent()).toBe('');

    // A backlog builds up: every second the samples fall one more second behind, while they keep arriving.
    const growth = setInterval(() => { lagMs = Math.min(8_000, lagMs + 250); }, 250);
    try {
      await expect.poll(async () => status.getAttribute('data-kind'), { timeout: 15_000 }).toBe('delayed');
      expect(await status.textContent()).toMatch(/^DELAYED — values are \d+ s old$/);
      // Samples still arrive (this is not NO DATA): the numerics keep changing under the DELAYED banner.
      const before = published;
      await waitFor(() => published > before + 10, { message: 'samples keep coming' });
      expect(await page.locator('.delayed').count()).toBeGreaterThan(0);
      await page.screenshot({ path: join(ARTIFACTS, 'live-console-delayed.png') });
      const alarm = await waitFor(() => activeAlarm('DATA_DELAYED'), { timeoutMs: 15_000, message: 'DATA_DELAYED raised' });
      expect(alarm.priority).toBe('MEDIUM');

      await page.goto(`${gw.url}/#/`);
      const tileStatus = page.locator(`a.tile[data-device="${DEVICE}"] .tile-status`);
      await expect.poll(async () => tileStatus.textContent(), { timeout: 10_000 }).toMatch(/^DELAYED \d+ s$/);
    } finally {
      clearInterval(growth);
    }

    // The backlog is gone: on time again, the screen is live and the alarm clears.
    lagMs = 0;
    await page.click(`a.tile[data-device="${DEVICE}"]`);
    await expect.poll(async () => page.locator('.data-status').getAttribute('data-kind'), { timeout: 10_000 }).toBe('live');
    await waitFor(async () => {
      const r = await gw.get<{ alarms: Array<{ rule: string; active: boolean }> }>(`/api/alarms?state=all&device=${DEVICE}`);
      return r.body.alarms.find((a) => a.rule === 'DATA_DELAYED')?.active === false;
    }, { timeoutMs: 15_000, message: 'DATA_DELAYED no longer active' });
    expect(pageProblems(page)).toEqual([]);
  });
});
