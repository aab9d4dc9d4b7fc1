import { describe, expect, it } from 'vitest';
import { LogThrottle, redactUrl, sendsInClear, withTimeout } from '../../../src/transports/types.js';

describe('LogThrottle', () => {
  it('admits one line per key per window and reports how many it held back', () => {
    let now = 0;
    const t = new LogThrottle(10_000, () => now);
    expect(t.admit('A|schema')).toEqual({ suppressed: 0 });
    expect(t.admit('A|schema')).toBeNull();
    expect(t.admit('A|schema')).toBeNull();
    expect(t.admit('B|schema')).toEqual({ suppressed: 0 });
    now = 9_999;
    expect(t.admit('A|schema')).toBeNull();
    now = 10_000;
    expect(t.admit('A|schema')).toEqual({ suppressed: 3 });
    now = 30_000;
    expect(t.admit('A|schema')).toEqual({ suppressed: 0 });
  });
});

describe('redactUrl', () => {
  it('drops the password and keeps everything else', () => {
    expect(redactUrl('mqtt://gw:s3cret@broker.local:1883')).toBe('mqtt://gw@broker.local:1883');
    expect(redactUrl('wss://u:p@host:9001/mqtt')).toBe('wss://u@host:9001/mqtt');
    expect(redactUrl('mqtt://127.0.0.1:1883')).toBe('mqtt://127.0.0.1:1883');
    expect(redactUrl('not a url //u:p@x')).not.toContain('p@');
  });
});

describe('withTimeout', () => {
  it('gives up after the limit without rejecting', async () => {
    await expect(withTimeout(new Promise(() => undefined), 10)).resolves.toBeUndefined();
    await expect(withTimeout(Promise.resolve(7), 1000)).resolves.toBe(7);
  });
});

describe('sendsInClear', () => {
  it('is true for plain MQTT or WebSocket off this machine, false for TLS or loopback', () => {
    for (const url of ['mqtt://broker:1883', 'ws://10.1.2.3/mqtt', 'tcp://ward3.example:1883', 'not a url']) expect(sendsInClear(url), url).toBe(true);
    for (const url of ['mqtts://broker:8883', 'wss://broker/mqtt', 'mqtt://127.0.0.1:1883', 'mqtt://localhost:1883', 'mqtt://[::1]:1883']) {
      expect(sendsInClear(url), url).toBe(false);
    }
  });
});
