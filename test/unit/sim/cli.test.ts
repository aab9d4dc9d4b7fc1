import { describe, expect, it } from 'vitest';
import { parseCli } from '../../../device-sim/src/cli.js';

describe('msc-sim argument parsing', () => {
  it('maps flags onto simulator options', () => {
    const r = parseCli(['--mqtt', 'mqtt://127.0.0.1:1883', '--devices', '3', '--id', 'ICU', '--rate', '50', '--seed', '9',
      '--speed', '2.5', '--auto-run', '--session-id', 'S-1', '--duration', '90s', '--prefix', 'p/v1', '--batch', '10']);
    expect(r).toEqual({
      kind: 'run',
      durationMs: 90_000,
      logLevel: 'info',
      options: expect.objectContaining({
        transport: 'mqtt', mqttUrl: 'mqtt://127.0.0.1:1883', devices: 3, idPrefix: 'ICU', rate: 50, seed: 9, speed: 2.5,
        autoRun: { sessionId: 'S-1' }, prefix: 'p/v1', batch: 10,
      }),
    });
    expect(parseCli(['--pty'])).toMatchObject({ kind: 'run', options: { transport: 'serial', pty: true } });
    expect(parseCli(['--serial', '/dev/ttyS1'])).toMatchObject({ kind: 'run', options: { transport: 'serial', serialPath: '/dev/ttyS1' } });
    expect(parseCli(['--help'])).toEqual({ kind: 'help' });
  });

  it('takes MQTT user, password file and TLS files (the password itself never as a flag)', () => {
    const r = parseCli(['--mqtt', 'mqtts://b:8883', '--mqtt-username', 'U', '--mqtt-password-file', '/pw', '--mqtt-ca', '/ca',
      '--mqtt-cert', '/c', '--mqtt-key', '/k']);
    expect(r).toMatchObject({ kind: 'run', options: { mqttUsername: 'U', mqttPasswordFile: '/pw', mqttCa: '/ca', mqttCert: '/c', mqttKey: '/k' } });
    for (const argv of [['--pty', '--mqtt-ca', '/ca'], ['--mqtt', 'mqtts://b', '--mqtt-cert', '/c'], ['--mqtt', 'mqtt://b', '--mqtt-password', 'x']]) {
      expect(parseCli(argv), argv.join(' ')).toMatchObject({ kind: 'error' });
    }
  });

  it('rejects bad flags with a message', () => {
    const errors = [
      [], ['--pty', '--mqtt', 'mqtt://x'], ['--pty', '--rate', '0'], ['--pty', '--rate', 'fast'], ['--pty', '--speed', '-1'],
      ['--pty', '--devices', '1.5'], ['--pty', '--duration', 'forever'], ['--pty', '--bogus'], ['--pty', '--session-id', 'S'],
      ['--pty', 'extra'],
    ];
    for (const argv of errors) expect(parseCli(argv), argv.join(' ')).toMatchObject({ kind: 'error', message: expect.any(String) });
  });
});
