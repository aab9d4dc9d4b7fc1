/**
 * A slow or stalled disk never makes live data late (docs/storage.md, "Durability modes"). The gateway runs
 * as deployed (its own process, MQTT QoS 1 from simulated consoles through mosquitto, the journal on) with
 * every fsync of its process slowed down, then stalled, by the LD_PRELOAD shim in test/faults/. Meanwhile a
 * WebSocket client measures how old each sample is when it arrives, alarms must still reach it, and when the
 * disk comes back the journal holds every sample the consoles sent.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWN_BUSY_WITH_WRITER_MS, WRITER_STALL_MS } from '../../src/storage/journal.js';
import { slowFsyncEnv } from '../faults/slowFsync.js';
import { RATE_HZ, startLiveRig, summary, type LiveRig } from '../helpers/liveRig.js';
import { waitFor } from '../helpers/waitFor.js';

/**
 * Median sample age at the client that means "late". A path that keeps up shows a few ms (tens on a loaded
 * machine); the design that acknowledged each message after its own fsync served 90 messages/s of the 200
 * offered here, so its median age was seconds and growing (docs/storage.md has the measured curve).
 */
const LATE_MS = 500;
const DEVICES = 8;

describe('a slow disk under the journal (LD_PRELOAD fsync shim)', () => {
  let rig: LiveRig;
  const stallFile = () => join(rig.base, 'disk-stalled');

  beforeAll(async () => {
    rig = await startLiveRig({ name: 'slow-disk', devices: DEVICES, env: (base) => slowFsyncEnv({ delayMs: 10, stallFile: join(base, 'disk-stalled') }) });
  });

  afterAll(async () => {
    if (rig) rmSync(stallFile(), { force: true });
    await rig?.stop();
  });

  it('with every fsync 10 ms slower, samples reach the live view at once and nothing falls behind', async () => {
    const from = Date.now();
    // Three seconds of load at 200 messages/s (600 fsync-sized waits of the old design).
    await rig.liveFor(from, 3_000);
    const ages = summary(rig.latencies(from, from + 3_000));
    expect(ages.n, `samples delivered in 3 s (${JSON.stringify(ages)})`).toBeGreaterThan(0.9 * 3 * RATE_HZ * DEVICES);
    expect(ages.p50, `median sample age at the WebSocket, ms (${JSON.stringify(ages)})`).toBeLessThan(LATE_MS);
    // And the journal keeps up with the slow disk: fsyncs happen, in the background.
    expect(await rig.metric('msc_journal_fsyncs_total')).toBeGreaterThan(0);
  });

  it('with fsync stalled completely for 5 s, live data and alarms keep flowing; afterwards the journal holds every sample', async () => {
    writeFileSync(stallFile(), 'stalled');
    // The stall is in force once an fsync hangs in it (the WAL is fsynced every 200 ms).
    await waitFor(async () => (await rig.metric('msc_journal_fsync_in_progress_seconds')) > 0.3, { message: 'an fsync hangs on the stalled disk' });
    const from = Date.now();
    const committedAtStall = await rig.metric('msc_journal_committed_total');
    rig.sim.apply({ action: 'air_in_line', device: rig.devices[0], duration: '2s' });
    await rig.liveFor(from, 5_000);
    const stillStalled = await rig.metric('msc_journal_fsync_in_progress_seconds');
    const committedDuringStall = await rig.metric('msc_journal_committed_total');
    rmSync(stallFile());

    expect(stillStalled, 'the disk was stalled all along').toBeGreaterThan(5);
    const ages = summary(rig.latencies(from, from + 5_000));
    expect(ages.n, `samples delivered during the stall (${JSON.stringify(ages)})`).toBeGreaterThan(0.9 * 5 * RATE_HZ * DEVICES);
    expect(ages.p50, `median sample age at the WebSocket during the stall, ms (${JSON.stringify(ages)})`).toBeLessThan(LATE_MS);
    expect(rig.alarms.some((a) => a.rule === 'AIR_IN_LINE' && a.device === rig.devices[0] && a.at >= from), 'AIR_IN_LINE during the stall').toBe(true);
    // Relaxed mode: the journal went on writing (and acknowledging) what it could not yet fsync.
    expect(committedDuringStall).toBeGreaterThan(committedAtStall);

    await waitFor(async () => (await rig.metric('msc_journal_fsync_in_progress_seconds')) === 0, { message: 'the disk is back' });
    for (const { device, sent, stored } of await rig.journalHoldsEverySample()) expect(stored, `${device}: journal holds every sample sent`).toEqual(sent);
    expect(existsSync(stallFile())).toBe(false);
  });
});

/**
 * A disk past the kernel's dirty-page limit: write(2) itself blocks, so the writer thread's commit hangs and no
 * batch is answered. The broker sends at most its in-flight window (100 messages) unacknowledged; acknowledgements
 * held for the disk would stop the broker, and the live view with it, within a fraction of a second.
 */
describe('a disk whose writes stall (LD_PRELOAD write shim on the journal files)', () => {
  let rig: LiveRig;
  const stallFile = () => join(rig.base, 'writes-stalled');

  beforeAll(async () => {
    rig = await startLiveRig({
      name: 'write-stall', devices: DEVICES,
      env: (base) => slowFsyncEnv({ writeStallFile: join(base, 'writes-stalled'), writeStallMatch: 'journal.sqlite' }),
    });
  });

  afterAll(async () => {
    if (rig) rmSync(stallFile(), { force: true });
    await rig?.stop();
  });

  it('with the journal\'s writes stalled for 8 s, live data and alarms keep flowing, STORAGE_FAILURE says so, and afterwards the journal holds every sample', async () => {
    const committedBefore = await rig.metric('msc_journal_committed_total');
    writeFileSync(stallFile(), 'stalled');
    const from = Date.now();
    rig.sim.apply({ action: 'air_in_line', device: rig.devices[0], duration: '2s' });
    await rig.liveFor(from, 8_000);
    const committedDuringStall = await rig.metric('msc_journal_committed_total');
    const stalledAlarm = rig.alarms.find((a) => a.rule === 'STORAGE_FAILURE' && a.active && a.at >= from);
    rmSync(stallFile());

    // The journal wrote nothing during the stall (but what was in flight when it began).
    expect(committedDuringStall - committedBefore, 'records committed during the stall').toBeLessThan(0.5 * RATE_HZ * DEVICES);
    const ages = summary(rig.latencies(from, from + 8_000));
    expect(ages.n, `samples delivered during the stall (${JSON.stringify(ages)})`).toBeGreaterThan(0.9 * 8 * RATE_HZ * DEVICES);
    expect(ages.p50, `median sample age at the WebSocket during the stall, ms (${JSON.stringify(ages)})`).toBeLessThan(LATE_MS);
    // The one pause: until the journal counts the disk as stalled, acknowledgements wait for it and the broker's
    // window runs dry, and a write on the gateway's own connection (a session record) may wait its busy timeout for
    // the lock the hung thread holds; then acknowledgements go on from memory and such writes fail at once.
    const during = rig.arrivals.filter((a) => a.at >= from && a.at < from + 8_000).map((a) => a.at);
    const longestGap = Math.max(...during.slice(1).map((at, i) => at - during[i]));
    expect(longestGap, 'longest pause in the live data during the stall, ms').toBeLessThan(WRITER_STALL_MS + OWN_BUSY_WITH_WRITER_MS + 500);
    expect(rig.alarms.some((a) => a.rule === 'AIR_IN_LINE' && a.device === rig.devices[0] && a.at >= from), 'AIR_IN_LINE during the stall').toBe(true);
    expect(stalledAlarm, 'STORAGE_FAILURE raised while the disk did not answer').toBeDefined();

    // The disk answers again: the journal writes what it held, and the alarm clears.
    await waitFor(() => rig.alarms.some((a) => a.rule === 'STORAGE_FAILURE' && !a.active && a.at > stalledAlarm!.at), { message: 'STORAGE_FAILURE cleared' });
    for (const { device, sent, stored } of await rig.journalHoldsEverySample()) expect(stored, `${device}: journal holds every sample sent`).toEqual(sent);
  });
});
