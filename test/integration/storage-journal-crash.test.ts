/**
 * `kill -9` of a process writing the journal: everything `committed()` confirmed is on
 * disk afterwards, and without confirmations (serial) what survives is a gap-free prefix whose last
 * seq `lastSeq()` reports, so the loss can be counted on restart. Runs the built journal
 * (`dist/`, built by `npm test` before vitest) in a real child process.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/storage/journal.js';
import { waitFor } from '../helpers/waitFor.js';
import { tempDir } from '../unit/storage/fixtures.js';

const JOURNAL_JS = resolve(import.meta.dirname, '../../dist/src/storage/journal.js');

/**
 * Appends telemetry forever and prints how many it appended. With `ack` it prints only after
 * committed() (an MQTT PUBACK's moment), as fast as it can; without, like a serial link, 10
 * samples every 10 ms (1 kHz) with no one waiting for the disk.
 */
function writerScript(dataDir: string, ack: boolean): string {
  return `
    import { Journal } from ${JSON.stringify(pathToFileURL(JOURNAL_JS).href)};
    const j = new Journal({ dataDir: ${JSON.stringify(dataDir)} });
    await j.start();
    let seq = 0;
    const append = (n) => {
      for (let i = 0; i < n; i++, seq++) {
        j.appendTelemetry({ deviceId: 'MSC-0001', sessionId: 'S-1', seq, t: 1764061200000 + seq * 10, rx: Date.now(), v: { QB: seq } });
      }
    };
    if (${ack}) {
      for (;;) {
        append(1 + Math.floor(Math.random() * 50));
        await j.committed();
        process.stdout.write(seq + '\\n');
      }
    } else {
      setInterval(() => { append(10); process.stdout.write(seq + '\\n'); }, 10);
    }`;
}

async function runAndKill(dataDir: string, ack: boolean, until: number): Promise<number> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', writerScript(dataDir, ack)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let acked = 0;
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) acked = Math.max(acked, Number(l));
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`writer exited: ${stderr}`);
    return acked >= until;
  }, { timeoutMs: 30_000, message: `writer reached ${until}` });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return acked;
}

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  if (!existsSync(JOURNAL_JS)) throw new Error(`${JOURNAL_JS} is missing: run \`npm run build\` first (npm test does)`);
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

describe('journal under kill -9', () => {
  it('keeps every sample whose committed() resolved (the MQTT ack point)', async () => {
    const acked = await runAndKill(tmp.dir, true, 20_000);
    const j = new Journal({ dataDir: tmp.dir });
    await j.start();
    try {
      const db = j.database()!;
      const kept = db.prepare('SELECT count(*) FROM telemetry WHERE seq < ?').pluck().get(acked) as number;
      expect(kept).toBe(acked);
      expect(j.lastSeq('MSC-0001')!.seq).toBeGreaterThanOrEqual(acked - 1);
    } finally {
      await j.stop();
    }
  }, 60_000);

  it('without acks keeps a gap-free prefix, and lastSeq() says where it ends', async () => {
    const seen = await runAndKill(tmp.dir, false, 3_000);
    const j = new Journal({ dataDir: tmp.dir });
    await j.start();
    try {
      const db = j.database()!;
      const { n, hi } = db.prepare('SELECT count(*) AS n, max(seq) AS hi FROM telemetry').get() as { n: number; hi: number };
      expect(n).toBe(hi + 1);
      expect(j.lastSeq('MSC-0001')).toEqual({ seq: hi, t: 1764061200000 + hi * 10, rx: expect.any(Number) });
      // Lost: at most the last uncommitted 100 ms (≈100 samples at 1 kHz); 500 leaves room for a busy machine.
      expect(seen - (hi + 1)).toBeLessThanOrEqual(500);
    } finally {
      await j.stop();
    }
  }, 60_000);
});
