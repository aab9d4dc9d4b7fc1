/** The `msc-gateway` command as a real process: exit codes, bad input at start, graceful shutdown. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startGatewayProcess } from '../helpers/gatewayProcess.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/waitFor.js';

const dir = mkdtempSync(join(tmpdir(), 'msc-cli-'));

describe('msc-gateway CLI', () => {
  it('prints help and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: msc-gateway/);
    expect(r.stdout).toMatch(/--serial PATH/);
  });

  it('exits 2 naming the offending field of a bad config file, before anything starts', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'http:\n  port: 99999\nmqtt:\n  url: nonsense\n');
    const r = await runCli(['--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/http\.port:/);
    expect(r.stderr).toMatch(/mqtt\.url:/);
    expect(r.stdout).toBe(''); // no log line: nothing started
  });

  it('exits 2 on an unknown flag and on a bad environment value', async () => {
    expect((await runCli(['--frobnicate'])).code).toBe(2);
    const r = await runCli([], { MSC_HTTP: 'not-an-address' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/http: expected HOST:PORT/);
  });

  it('keeps running with a missing serial port and a broker that is down, and stops on SIGTERM within 5 s', async () => {
    const deadBroker = await freePort();
    const port = await freePort();
    const gw = await startGatewayProcess([
      '--serial', join(dir, 'no-such-tty'), '--mqtt', `mqtt://127.0.0.1:${deadBroker}`, '--data-dir', join(dir, 'data'),
    ], port);
    const health = await waitFor(async () => {
      const h = await (await fetch(`${gw.url}/healthz`)).json();
      return h.reasons?.length === 2 ? h : null;
    }, { message: 'both transports reported down' });
    expect(health.status).toBe('degraded');
    expect(health.live).toBe(true);
    await waitFor(() => gw.logs.some((l) => /serial/.test(String(l.msg))), { message: 'a serial log line' });
    const started = Date.now();
    const code = await gw.kill('SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(gw.logs.some((l) => l.msg === 'msc-gateway stopped')).toBe(true);
    expect(gw.logs.every((l) => l.level === undefined || typeof l.level === 'number')).toBe(true);
  });
});
