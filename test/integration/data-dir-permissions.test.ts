/**
 * The data directory holds the journal (patients' data), the audit trail and token hashes: 0700, and every file
 * in it 0600 (journal.sqlite and its -wal/-shm, tokens.json, alarms.json, alarm-profile.json), whatever the
 * process umask. A directory left open by an older gateway or a restore is tightened at start, with a log line.
 * Run with umask 000, so a file created without an explicit mode would be readable (and writable) by anyone.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokensCommand } from '../../src/cli/tokens.js';
import { createLogger } from '../../src/log.js';
import type { DeviceLink } from '../../src/model/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/waitFor.js';
import { helloFrame } from '../helpers/hello.js';

const DEV = 'MSC-P001';
const link: DeviceLink = { kind: 'serial', source: '/dev/ttyPERM', send: async () => {} };

let base: string;
let savedUmask: number;
const gateways: TestGateway[] = [];

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** Every entry under dir (recursively) with its mode, for one readable assertion. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    out[name] = modeOf(full);
    if (statSync(full).isDirectory()) for (const [k, v] of Object.entries(modes(full))) out[`${name}/${k}`] = v;
  }
  return out;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'msc-perm-'));
  savedUmask = process.umask(0o000);
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
  process.umask(savedUmask);
  rmSync(base, { recursive: true, force: true });
});

describe('data directory permissions', () => {
  it('a fresh data directory is 0700 and every file the gateway writes in it is 0600', async () => {
    const dataDir = join(base, 'fresh', 'data');
    const gw = await startTestGateway({}, { dataDir });
    gateways.push(gw);
    // Something in every file: a console (journal), a limit change (alarm-profile.json), an audio pause (alarms.json).
    await gw.gateway.hub.ingest(DEV, [
      helloFrame(DEV),
      { type: 'S', seq: 1, t: Date.now(), state: 'RUNNING', sessionId: 'S-P1' },
      { type: 'T', seq: 2, t: Date.now(), v: { QB: 150, PV: 80 } },
    ] as never, link);
    const put = await fetch(`${gw.url}/api/devices/${DEV}/limits`, {
      method: 'PUT', headers: { authorization: `Bearer ${gw.tokens.engineer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rule: 'PV_HIGH', limit: 240, reason: 'permissions test' }),
    });
    expect(put.status).toBe(200);
    expect((await gw.post(`/api/devices/${DEV}/audio-pause`, {})).status).toBe(200);
    await waitFor(() => existsSync(join(dataDir, 'alarms.json')), { message: 'alarms.json written' });

    const files = modes(dataDir);
    expect(Object.keys(files)).toEqual(expect.arrayContaining([
      'journal.sqlite', 'journal.sqlite-wal', 'journal.sqlite-shm', 'tokens.json', 'alarms.json', 'alarm-profile.json',
    ]));
    expect(modeOf(dataDir)).toBe('700');
    expect(Object.entries(files).filter(([, m]) => m !== '600')).toEqual([]);
  });

  it('a data directory open to others is tightened at start, with one warning line naming what changed', async () => {
    const dataDir = join(base, 'loose');
    mkdirSync(dataDir, { mode: 0o755 });
    const db = new Database(join(dataDir, 'journal.sqlite'));
    db.pragma('journal_mode = WAL');
    db.close();
    writeFileSync(join(dataDir, 'alarm-profile.json'), JSON.stringify({ format: 1, profile: {} }), { mode: 0o644 });
    writeFileSync(join(dataDir, 'notes.txt'), 'left by an engineer', { mode: 0o666 });
    chmodSync(dataDir, 0o755);
    expect(modeOf(join(dataDir, 'journal.sqlite'))).toBe('644');

    const lines: Array<Record<string, any>> = [];
    const sink = new Writable({ write(c, _e, done) { for (const l of String(c).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
    const gw = await startTestGateway({}, { dataDir, logger: createLogger('info', sink) });
    gateways.push(gw);
    await gw.gateway.hub.ingest(DEV, [helloFrame(DEV), { type: 'S', seq: 1, t: Date.now(), state: 'IDLE', sessionId: null }] as never, link);

    expect(modeOf(dataDir)).toBe('700');
    expect(Object.entries(modes(dataDir)).filter(([, m]) => m !== '600')).toEqual([]);
    const warned = lines.filter((l) => l.module === 'data-dir');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, dir: dataDir });
    expect(warned[0].changed).toEqual(expect.arrayContaining([
      { path: dataDir, from: '755', to: '700' },
      { path: join(dataDir, 'journal.sqlite'), from: '644', to: '600' },
      { path: join(dataDir, 'notes.txt'), from: '666', to: '600' },
    ]));
  });

  it('`msc-gateway tokens add` on a fresh directory creates it 0700 with its files 0600', async () => {
    const dataDir = join(base, 'cli', 'data');
    const out = new PassThrough();
    const err = new PassThrough();
    const code = await tokensCommand(['add', '--name', 'nurse1', '--role', 'operator', '--data-dir', dataDir], {}, { out, err });
    expect(code).toBe(0);
    expect(modeOf(dataDir)).toBe('700');
    expect(Object.keys(modes(dataDir))).toEqual(expect.arrayContaining(['journal.sqlite', 'tokens.json']));
    expect(Object.entries(modes(dataDir)).filter(([, m]) => m !== '600')).toEqual([]);
  });
});
