/**
 * The `msc-sim` command as CI runs it: a real process on a socat pty or a real mosquitto, stopped
 * by a signal or by --duration. The CLI and its imports are transpiled to a temp dir first, so the
 * test does not depend on a previous build.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { SerialPort } from 'serialport';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../../src/protocol/lineSplitter.js';
import { decodeLine, encodeCommand } from '../../src/protocol/serial.js';
import type { DeviceFrame } from '../../src/protocol/types.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const ROOT = join(import.meta.dirname, '../..');
let buildDir = '';

async function transpileDir(rel: string): Promise<void> {
  for (const name of await readdir(join(ROOT, rel))) {
    if (!name.endsWith('.ts')) continue;
    const source = await readFile(join(ROOT, rel, name), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      fileName: name,
    });
    await mkdir(join(buildDir, rel), { recursive: true });
    await writeFile(join(buildDir, rel, name.replace(/\.ts$/, '.js')), out.outputText);
  }
}

interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function runCli(args: string[]): CliRun {
  const child = spawn(process.execPath, [join(buildDir, 'device-sim/src/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  buildDir = await mkdtemp(join(tmpdir(), 'msc-sim-cli-'));
  await writeFile(join(buildDir, 'package.json'), '{"type":"module"}');
  await symlink(join(ROOT, 'node_modules'), join(buildDir, 'node_modules'), 'dir');
  await transpileDir('src/protocol');
  await transpileDir('device-sim/src');
});
afterAll(async () => {
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

describe('msc-sim command', () => {
  it('exits 2 with the usage on bad flags', async () => {
    const run = runCli(['--pty', '--rate', '500']);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/--rate must be 1-100 Hz[\s\S]*Usage: msc-sim/);
  });

  it('exits 1 naming the field when the scenario file is invalid', async () => {
    const file = join(buildDir, 'bad.yaml');
    await writeFile(file, 'name: bad\nevents:\n  - at: 5s\n    action: sensor_fault\n');
    const run = runCli(['--pty', '--scenario', file]);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('events[0].params');
  });

  it('--pty prints the gateway path, speaks the ICD there, and stops cleanly on SIGTERM with its stats', async () => {
    const run = runCli(['--pty', '--auto-run', '--session-id', 'S-CLI-1', '--seed', '3', '--speed', '4', '--rate', '20']);
    try {
      const path = await waitFor(() => jsonLines(run.stdout()).find((l) => 'gatewayPath' in l)?.gatewayPath as string,
        { message: 'gatewayPath on stdout' });
      const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
      const frames: DeviceFrame[] = [];
      const splitter = new LineSplitter();
      port.pipe(splitter);
      splitter.on('data', (o: SplitterOutput) => {
        if (o.kind === 'line') for (const r of decodeLine(o.line)) if (r.type !== 'discard') frames.push(r);
      });
      await waitFor(() => frames.some((f) => f.type === 'S' && f.state === 'RUNNING' && f.sessionId === 'S-CLI-1'),
        { message: 'RUNNING with the session id' });
      port.write(encodeCommand({ cmdId: 'id1', verb: 'ID', args: [] }));
      // ACK and HELLO are two writes and may arrive in two reads: wait for the frame after the ACK too.
      const [ack, next] = await waitFor(() => {
        const i = frames.findIndex((f) => f.type === 'ACK' && f.cmdId === 'id1');
        return i >= 0 && i + 1 < frames.length ? [frames[i], frames[i + 1]] : null;
      }, { message: 'ACK id1 and the frame after it' });
      expect(ack).toMatchObject({ type: 'ACK', cmdId: 'id1', result: 'OK' });
      expect(next).toMatchObject({ type: 'HELLO', deviceId: 'MSC-0001' });
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      const stats = jsonLines(run.stdout()).find((l) => 'stats' in l)?.stats as { framesSent: number };
      expect(stats.framesSent).toBeGreaterThan(10);
      expect(jsonLines(run.stderr()).some((l) => l.msg === 'simulator stopped')).toBe(true);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('--mqtt with --duration stops by itself and leaves every console offline (retained)', async () => {
    const broker = await startMosquitto();
    const obs = connect(broker.url, { clientId: `obs-cli-${process.pid}` });
    try {
      const got = new Map<string, string>();
      obs.on('message', (topic, payload) => got.set(topic, payload.toString()));
      await new Promise<void>((resolve) => obs.once('connect', () => resolve()));
      await obs.subscribeAsync('msc/v1/+/status', { qos: 1 });
      const run = runCli(['--mqtt', broker.url, '--devices', '2', '--duration', '6s', '--speed', '3', '--id', 'CLI']);
      await waitFor(() => got.get('msc/v1/CLI-0002/status') === 'online', { message: 'online' });
      expect(await run.exited).toBe(0);
      await waitFor(() => got.get('msc/v1/CLI-0001/status') === 'offline' && got.get('msc/v1/CLI-0002/status') === 'offline',
        { message: 'both offline' });
    } finally {
      await obs.endAsync(true);
      await broker.stop();
    }
  });
});
