import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFromArgs } from '../../../src/cli/options.js';
import { ConfigError, parseConfig } from '../../../src/config.js';
import { loadMqttSecrets } from '../../../src/transports/mqttSecrets.js';

const dir = mkdtempSync(join(tmpdir(), 'msc-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({
      http: { host: '127.0.0.1', port: 8080 }, serial: [], mqtt: null, dataDir: './data', journal: true, influx: null,
      retention: { days: 14 }, log: { level: 'info' },
    });
    expect(Object.isFrozen(c.http)).toBe(true);
  });

  it('reads YAML, then environment, then flags, in that precedence', () => {
    const cfg = file('a.yaml', 'http: { host: 0.0.0.0, port: 9000 }\nmqtt: { url: "mqtt://broker:1883", prefix: site/a }\ndataDir: /var/lib/msc\n');
    const { config } = loadConfigFromArgs(
      ['--config', cfg, '--serial', '/dev/ttyUSB0', '--serial', '/dev/ttyUSB1', '--http', '127.0.0.1:9100'],
      { MSC_DATA_DIR: '/srv/msc', MSC_HTTP: '0.0.0.0:9200' },
    );
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9100, allowedOrigins: [] });
    expect(config.serial.map((s) => s.path)).toEqual(['/dev/ttyUSB0', '/dev/ttyUSB1']);
    expect(config.mqtt).toMatchObject({ url: 'mqtt://broker:1883', prefix: 'site/a' });
    expect(config.dataDir).toBe('/srv/msc');
  });

  it('reads http.allowedOrigins from the file or MSC_HTTP_ALLOWED_ORIGINS, normalised; --http keeps them', () => {
    const cfg = file('o.yaml', 'http: { port: 9000, allowedOrigins: ["HTTPS://Ward-GW.example.org:443/"] }\n');
    let { config } = loadConfigFromArgs(['--config', cfg, '--http', '127.0.0.1:9100'], {});
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9100, allowedOrigins: ['https://ward-gw.example.org'] });
    ({ config } = loadConfigFromArgs(['--config', cfg], { MSC_HTTP_ALLOWED_ORIGINS: 'http://a.example:8080, https://b.example' }));
    expect(config.http.allowedOrigins).toEqual(['http://a.example:8080', 'https://b.example']);
    expect(issuesOf(() => loadConfigFromArgs([], { MSC_HTTP_ALLOWED_ORIGINS: 'https://a.example/path' }))[0]).toMatch(/^http\.allowedOrigins\.0: must be an origin/);
    expect(issuesOf(() => loadConfigFromArgs([], { MSC_HTTP_ALLOWED_ORIGINS: '*' }))[0]).toMatch(/^http\.allowedOrigins\.0:/);
  });

  it('names the offending field path of a bad file', () => {
    const cfg = file('bad.json', JSON.stringify({ http: { port: 'eighty' }, serial: [{ baudRate: 9600 }], bogus: 1 }));
    const issues = issuesOf(() => loadConfigFromArgs(['--config', cfg], {}));
    expect(issues.some((i) => i.startsWith('http.port:'))).toBe(true);
    expect(issues.some((i) => i.startsWith('serial.0.path:'))).toBe(true);
    expect(issues.some((i) => /bogus/.test(i))).toBe(true);
  });

  it('rejects a bad flag, a bad URL and an unreadable or unparsable file', () => {
    expect(issuesOf(() => loadConfigFromArgs(['--nope'], {}))[0]).toMatch(/nope/);
    expect(issuesOf(() => loadConfigFromArgs(['--mqtt', 'localhost'], {}))[0]).toMatch(/^mqtt\.url:/);
    expect(issuesOf(() => loadConfigFromArgs(['--http', 'x'], {}))[0]).toMatch(/^http:/);
    expect(issuesOf(() => loadConfigFromArgs(['--config', join(dir, 'missing.yaml')], {}))[0]).toMatch(/cannot read/);
    expect(issuesOf(() => loadConfigFromArgs(['--config', file('x.yaml', 'a: [1, 2')], {}))[0]).toMatch(/not valid YAML/);
    expect(issuesOf(() => loadConfigFromArgs(['--influx', 'http://host:8086'], {}))[0]).toMatch(/^influx\.url:/);
  });

  it('takes MQTT credentials and TLS files from the file, MSC_MQTT_* and flags; a later password replaces the earlier form', () => {
    const cfg = file('m.yaml', 'mqtt: { url: "mqtts://broker:8883", username: gw1, passwordFile: /etc/msc/pw, ca: /etc/msc/ca.crt }\n');
    expect(loadConfigFromArgs(['--config', cfg], {}).config.mqtt).toMatchObject({
      username: 'gw1', passwordFile: '/etc/msc/pw', ca: '/etc/msc/ca.crt',
    });
    const fromEnv = loadConfigFromArgs(['--config', cfg], { MSC_MQTT_PASSWORD: 's3cret', MSC_MQTT_USERNAME: 'gw2' }).config.mqtt!;
    expect(fromEnv).toMatchObject({ username: 'gw2', password: 's3cret' });
    expect(fromEnv.passwordFile).toBeUndefined();
    const flags = loadConfigFromArgs(
      ['--config', cfg, '--mqtt-password-file', '/run/pw', '--mqtt-ca', '/x/ca.pem', '--mqtt-cert', '/x/c.pem', '--mqtt-key', '/x/k.pem'],
      { MSC_MQTT_PASSWORD: 's3cret' },
    ).config.mqtt!;
    expect(flags).toMatchObject({ passwordFile: '/run/pw', ca: '/x/ca.pem', cert: '/x/c.pem', key: '/x/k.pem' });
    expect(flags.password).toBeUndefined();
    // No flag carries the password itself: argv is visible to every user of the machine.
    expect(issuesOf(() => loadConfigFromArgs(['--mqtt-password', 'x'], {}))[0]).toMatch(/mqtt-password/);
  });

  it('refuses MQTT settings that would not do what they say', () => {
    const issue = (mqtt: Record<string, unknown>) => issuesOf(() => parseConfig({ mqtt }));
    expect(issue({ url: 'mqtt://b:1883', username: 'u', password: 'p', passwordFile: '/f' })).toEqual(['mqtt.passwordFile: give password or passwordFile, not both']);
    expect(issue({ url: 'mqtt://b:1883', password: 'p' })).toEqual(['mqtt.username: required with a password']);
    expect(issue({ url: 'mqtt://b:1883', ca: '/ca.crt' })).toEqual(['mqtt.ca: needs an mqtts:// or wss:// url']);
    expect(issue({ url: 'mqtts://b:8883', cert: '/c.pem' })).toEqual(['mqtt.key: cert and key go together']);
    expect(parseConfig({ mqtt: { url: 'mqtt://u:p@b:1883' } }).mqtt!.url).toBe('mqtt://u:p@b:1883');
  });

  it('reads the MQTT password and TLS files at start, and names the key of one it cannot read', () => {
    const pw = file('pw', 'first-line\nignored\n');
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const mqtt = (m: Record<string, unknown>) => parseConfig({ mqtt: { url: 'mqtts://b:8883', username: 'u', ...m } }).mqtt!;
    const secrets = loadMqttSecrets(mqtt({ passwordFile: pw, ca }));
    expect(secrets.password).toBe('first-line');
    expect(secrets.ca?.toString()).toMatch(/BEGIN CERTIFICATE/);
    expect(issuesOf(() => loadMqttSecrets(mqtt({ ca: join(dir, 'none.pem') })))).toEqual([`mqtt.ca: cannot read ${join(dir, 'none.pem')} (ENOENT)`]);
    expect(issuesOf(() => loadMqttSecrets(mqtt({ ca: pw })))[0]).toMatch(/^mqtt\.ca: .* is not a PEM file$/);
    expect(issuesOf(() => loadMqttSecrets(mqtt({ passwordFile: file('empty', '\n') })))[0]).toMatch(/^mqtt\.passwordFile: .* is empty$/);
    expect(issuesOf(() => loadMqttSecrets(mqtt({ cert: ca, key: join(dir, 'k') })))[0]).toMatch(/^mqtt\.key: cannot read/);
  });
});
