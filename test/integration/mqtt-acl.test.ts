/**
 * The broker as deployed: a real mosquitto running deploy/mosquitto/mosquitto.conf and deploy/mosquitto/acl as
 * shipped (only the listener port and file paths change, see deployedConfig), TLS with a CA made by
 * scripts/mqtt-tls-certs.sh, users made by scripts/mqtt-add-console.sh. The gateway (with mqtt.passwordFile and
 * mqtt.ca) and a simulated console (with its own user) run a session and a command round trip; then what the
 * lock is for: no anonymous or wrong-password client, no console publishing as another console or on any `cmd`,
 * no console reading another console's `cmd` or data.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runCli } from '../helpers/gatewayProcess.js';
import { deployedConfig, startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const PHASES = { selftestMs: 200, primingMs: 300, rinsebackMs: 500 };
const A = 'MSC-0001';
const B = 'MSC-0002';
const PASSWORDS: Record<string, string> = {
  'msc-gateway-1': 'gw1-Secret-9f2c', 'msc-gateway-2': 'gw2-Secret-77ab', [A]: 'consoleA-Secret-31d0', [B]: 'consoleB-Secret-c4e8',
};
const NOT_AUTHORIZED = 0x87;

/** scripts/mqtt-add-console.sh with the password in its environment, as the compose setup script runs it. */
async function addUser(files: { passwd: string; acl: string }, name: string, opts: { gateway?: boolean; password?: string } = {}) {
  const args = ['--file', files.passwd, '--acl', files.acl, ...(opts.gateway ? ['--gateway'] : []), name];
  return run(join(ROOT, 'scripts/mqtt-add-console.sh'), args, {
    env: { ...process.env, MQTT_NEW_PASSWORD: opts.password ?? PASSWORDS[name] },
  });
}

/** An MQTT 5 client; resolves once connected, rejects with the CONNACK reason code or the TLS error. */
function client(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolveClient, reject) => {
    const c = connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    c.once('connect', () => resolveClient(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

describe('mosquitto as deployed: users, ACL and TLS', () => {
  let dir: string;
  let files: { passwd: string; acl: string; ca: string };
  let broker: MosquittoBroker;
  let gw: TestGateway;
  let sim: Simulator;
  const clients: MqttClient[] = [];
  const as = async (user: string, extra: IClientOptions = {}) => {
    const c = await client(broker.url, { username: user, password: PASSWORDS[user], ca: readFileSync(files.ca), ...extra });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'msc-acl-'));
    const configDir = join(dir, 'config');
    const certDir = join(dir, 'certs');
    mkdirSync(configDir);
    files = { passwd: join(configDir, 'passwd'), acl: join(configDir, 'acl'), ca: join(certDir, 'ca.crt') };
    copyFileSync(join(ROOT, 'deploy/mosquitto/acl'), files.acl);
    await run(join(ROOT, 'scripts/mqtt-tls-certs.sh'), ['--dir', certDir, 'localhost', '127.0.0.1']);
    // msc-gateway-1 has its block in the shipped ACL; msc-gateway-2 gets one from the script.
    await addUser(files, 'msc-gateway-1', { gateway: true });
    await addUser(files, 'msc-gateway-2', { gateway: true });
    await addUser(files, A);
    await addUser(files, B);
    broker = await startMosquitto({ base: (port) => deployedConfig(port, { configDir, certDir }), scheme: 'mqtts' });

    const passwordFile = join(dir, 'gateway.password');
    writeFileSync(passwordFile, `${PASSWORDS['msc-gateway-1']}\n`, { mode: 0o600 });
    gw = await startTestGateway({
      mqtt: { url: broker.url, username: 'msc-gateway-1', passwordFile, ca: files.ca, clientId: 'msc-gateway-1' },
    });
    sim = await startSimulator({
      transport: 'mqtt', mqttUrl: broker.url, mqttPassword: PASSWORDS[A], mqttCa: files.ca, deviceIds: [A],
      autoRun: { sessionId: 'S-ACL-1' }, phases: PHASES, rate: 10,
    });
    await waitFor(async () => {
      const d = (await gw.get(`/api/devices/${A}`)).body;
      return d.state === 'RUNNING' && d.link === 'connected' && typeof d.values?.QB?.v === 'number';
    }, { timeoutMs: 20_000, message: `${A} RUNNING in the gateway over TLS with users` });
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await sim?.stop();
    await gw?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the password file to its owner (the script makes it 0600; mosquitto keeps only hashes)', () => {
    expect(statSync(files.passwd).mode & 0o077).toBe(0);
    const text = readFileSync(files.passwd, 'utf8');
    for (const pw of Object.values(PASSWORDS)) expect(text).not.toContain(pw);
    expect(readFileSync(files.acl, 'utf8').match(/^user msc-gateway-2$/gm)).toHaveLength(1);
  });

  it('gateway and console with their own users over TLS: data flows and a command makes the round trip', async () => {
    const r = await gw.post(`/api/devices/${A}/commands`, { verb: 'SET', args: ['QB', 160], reason: 'acl test' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ result: 'OK', tries: 1 });
    expect(sim.consoles[0].setpoints.QB).toBe(160);
    const mqtt = gw.gateway.transports.find((t) => t.kind === 'mqtt')!.status();
    expect(mqtt.up).toBe(true);
    expect(mqtt.source).not.toContain(PASSWORDS['msc-gateway-1']);
  });

  it('refuses an anonymous client, a wrong password, a client that does not check the CA, and plain MQTT', async () => {
    const ca = readFileSync(files.ca);
    await expect(client(broker.url, { ca })).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    await expect(client(broker.url, { ca, username: A, password: 'not-the-password' })).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    await expect(client(broker.url, { ca, username: 'nobody', password: 'x' })).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    // TLS verification: a client without the CA does not trust the broker (nor sends it the password).
    await expect(client(broker.url, { username: A, password: PASSWORDS[A] })).rejects.toThrow(/certificate/i);
    // The only listener speaks TLS: plain MQTT on it gets no CONNACK.
    await expect(client(broker.url.replace('mqtts:', 'mqtt:'), { username: A, password: PASSWORDS[A], connectTimeout: 1500 }))
      .rejects.toThrow();
  });

  it('a console may publish only its own topics: PUBACK 0x87 on another console\'s topics and on every cmd, and the gateway never sees them', async () => {
    const seen: string[] = [];
    const sniffer = await as('msc-gateway-2');
    await sniffer.subscribeAsync('msc/v1/#', { qos: 1 });
    sniffer.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    const before = { received: sim.stats().perDevice[A].commandsReceived, qb: sim.consoles[0].setpoints.QB };

    const b = await as(B);
    const forged = JSON.stringify({ seq: 1, t: Date.now(), v: { QB: 999 } });
    const refused = [
      [`msc/v1/${A}/telemetry`, forged],
      [`msc/v1/${A}/status`, 'offline'],
      [`msc/v1/${A}/ack`, JSON.stringify({ id: 'x', result: 'OK', detail: '' })],
      [`msc/v1/${A}/cmd`, JSON.stringify({ id: 'evil1', verb: 'PAUSE', args: [] })],
      [`msc/v1/${B}/cmd`, JSON.stringify({ id: 'evil2', verb: 'PAUSE', args: [] })],
      ['msc/v1/gateway/cmd', '{}'],
      ['other/topic', 'x'],
    ];
    for (const [topic, payload] of refused) {
      await expect(b.publishAsync(topic, payload, { qos: 1 }), topic).rejects.toMatchObject({ code: NOT_AUTHORIZED });
    }
    // Its own topic is accepted: the marker. The sniffer gets one publisher's messages in order, so once it has
    // the marker, anything refused above would already be there.
    const marker = JSON.stringify({ seq: 1, t: Date.now(), v: { QB: 150 } });
    await b.publishAsync(`msc/v1/${B}/telemetry`, marker, { qos: 1 });
    await waitFor(() => seen.includes(`msc/v1/${B}/telemetry ${marker}`), { message: 'marker at the sniffer' });
    expect(seen.filter((m) => m.includes('999') || m.includes('evil') || m.endsWith('offline') || m.includes('/cmd'))).toEqual([]);
    expect(sim.stats().perDevice[A].commandsReceived).toBe(before.received);
    expect(sim.consoles[0].state).toBe('RUNNING');
    expect(sim.consoles[0].setpoints.QB).toBe(before.qb);
    expect((await gw.get(`/api/devices/${A}`)).body.link).toBe('connected');
  });

  it('a console cannot read another console\'s cmd (nor its data): a command to it never arrives', async () => {
    const got: string[] = [];
    const b = await as(B);
    b.on('message', (topic) => got.push(topic));
    // Mosquitto's acl_file grants every SUBSCRIBE (SUBACK success) and checks `read` on each message it would
    // deliver: what matters is what arrives, checked below.
    const granted = await b.subscribeAsync([`msc/v1/${A}/cmd`, 'msc/v1/+/cmd', `msc/v1/${A}/#`, 'msc/v1/#', `msc/v1/${B}/cmd`], { qos: 1 });
    expect(granted.find((g) => g.topic === `msc/v1/${B}/cmd`)?.qos).toBe(1);

    const r = await gw.post(`/api/devices/${A}/commands`, { verb: 'SILENCE', args: [] });
    expect(r.body).toMatchObject({ result: 'OK' }); // delivered to A, so routed past B's subscriptions already
    const gw2 = await as('msc-gateway-2');
    await gw2.publishAsync(`msc/v1/${B}/cmd`, JSON.stringify({ id: 'marker', verb: 'SILENCE', args: [] }), { qos: 1 });
    await waitFor(() => got.includes(`msc/v1/${B}/cmd`), { message: 'B receives its own cmd' });
    expect(got.filter((t) => t.startsWith(`msc/v1/${A}/`))).toEqual([]);
    // Its own cmd only (once per matching filter: MQTT 5 delivers overlapping subscriptions separately).
    expect(new Set(got)).toEqual(new Set([`msc/v1/${B}/cmd`]));
  });

  it('a console cannot take over another console\'s (or the gateway\'s) session with its client id', async () => {
    // use_username_as_clientid: B connecting as client id MSC-0001 or msc-gateway-1 gets its own session.
    await as(B, { clientId: A });
    await as(B, { clientId: 'msc-gateway-1' });
    const r = await gw.post(`/api/devices/${A}/commands`, { verb: 'SILENCE', args: [] });
    expect(r.body).toMatchObject({ result: 'OK' });
    expect((await gw.get(`/api/devices/${A}`)).body.link).toBe('connected');
    expect(gw.gateway.transports.find((t) => t.kind === 'mqtt')!.status().reconnects).toBe(0);
  });

  it('the gateway CLI refuses an unreadable mqtt.ca or password file by name, before it starts', async () => {
    const env = { MSC_MQTT: broker.url, MSC_MQTT_USERNAME: 'msc-gateway-1', MSC_DATA_DIR: join(dir, 'cli-data'), MSC_HTTP: '127.0.0.1:0' };
    const ca = await runCli([], { ...env, MSC_MQTT_PASSWORD: PASSWORDS['msc-gateway-1'], MSC_MQTT_CA: join(dir, 'missing-ca.crt') });
    expect(ca.code).toBe(2);
    expect(ca.stderr).toMatch(/mqtt\.ca: cannot read .*missing-ca\.crt \(ENOENT\)/);
    const pw = await runCli([], { ...env, MSC_MQTT_PASSWORD_FILE: join(dir, 'missing.password'), MSC_MQTT_CA: files.ca });
    expect(pw.code).toBe(2);
    expect(pw.stderr).toMatch(/mqtt\.passwordFile: cannot read/);
  });
});

describe('scripts/mqtt-add-console.sh', () => {
  let dir: string;
  let files: { passwd: string; acl: string };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'msc-addconsole-'));
    files = { passwd: join(dir, 'passwd'), acl: join(dir, 'acl') };
    copyFileSync(join(ROOT, 'deploy/mosquitto/acl'), files.acl);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses ids the gateway would refuse, and writes nothing', async () => {
    for (const bad of ['gateway', 'a/b', 'MSC+1', '#', '-lead', 'a:b', 'x'.repeat(65), 'a b']) {
      await expect(addUser(files, bad, { password: 'x' }), bad).rejects.toMatchObject({ code: 2 });
    }
    expect(() => statSync(files.passwd)).toThrow();
  });

  it('is idempotent: a second run keeps the password, --rotate changes it; a gateway block is added once', async () => {
    const first = await run(join(ROOT, 'scripts/mqtt-add-console.sh'), ['--file', files.passwd, '--acl', files.acl, 'WARD-7'], { env: { ...process.env, MQTT_NEW_PASSWORD: '' } });
    expect(first.stdout).toMatch(/username: +WARD-7/);
    const generated = /password: +(\S+)/.exec(first.stdout)![1];
    expect(generated.length).toBeGreaterThanOrEqual(30);
    const hash = readFileSync(files.passwd, 'utf8');
    const again = await addUser(files, 'WARD-7', { password: 'other' });
    expect(again.stdout).toMatch(/nothing changed/);
    expect(readFileSync(files.passwd, 'utf8')).toBe(hash);
    await run(join(ROOT, 'scripts/mqtt-add-console.sh'), ['--file', files.passwd, '--rotate', 'WARD-7'], { env: { ...process.env, MQTT_NEW_PASSWORD: 'rotated' } });
    expect(readFileSync(files.passwd, 'utf8')).not.toBe(hash);
    await addUser(files, 'gw-east', { gateway: true, password: 'g' });
    await addUser(files, 'gw-east', { gateway: true, password: 'g' });
    expect(readFileSync(files.acl, 'utf8').match(/^user gw-east$/gm)).toHaveLength(1);
  });
});

describe('scripts/mqtt-compose-setup.sh', () => {
  it('makes the users of .env and the TLS files compose mounts; the gateway and a demo console log in with them', async () => {
    // A copy of the repository's deploy tree, so the real deploy/mosquitto stays untouched.
    const tree = mkdtempSync(join(tmpdir(), 'msc-compose-'));
    let broker: MosquittoBroker | null = null;
    const opened: MqttClient[] = [];
    try {
      mkdirSync(join(tree, 'scripts'));
      mkdirSync(join(tree, 'deploy/mosquitto'), { recursive: true });
      for (const s of ['mqtt-compose-setup.sh', 'mqtt-add-console.sh', 'mqtt-tls-certs.sh']) copyFileSync(join(ROOT, 'scripts', s), join(tree, 'scripts', s));
      copyFileSync(join(ROOT, 'deploy/mosquitto/acl'), join(tree, 'deploy/mosquitto/acl'));
      const env = readFileSync(join(ROOT, '.env.example'), 'utf8');
      writeFileSync(join(tree, '.env'), env);
      const { stderr } = await run(join(tree, 'scripts/mqtt-compose-setup.sh'));
      expect(stderr).toMatch(/MQTT_GATEWAY_PASSWORD is still the example value/);
      const passwordOf = (v: string) => new RegExp(`^${v}=(.*)$`, 'm').exec(env)![1];

      const configDir = join(tree, 'deploy/mosquitto');
      const certDir = join(configDir, 'certs');
      broker = await startMosquitto({ base: (port) => deployedConfig(port, { configDir, certDir }), scheme: 'mqtts' });
      const ca = readFileSync(join(certDir, 'ca.crt'));
      for (const [user, variable] of [['msc-gateway-1', 'MQTT_GATEWAY_PASSWORD'], ['WARDA-0001', 'MQTT_SIM_WARDA_PASSWORD']]) {
        opened.push(await client(broker.url, { ca, username: user, password: passwordOf(variable) }));
      }
      // Run again (after a password change in .env, say): still one user each, and no second gateway ACL block.
      await run(join(tree, 'scripts/mqtt-compose-setup.sh'));
      const users = readFileSync(join(configDir, 'passwd'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(':')[0]);
      expect(users.sort()).toEqual(['WARDA-0001', 'WARDB-0001', 'msc-gateway-1']);
      expect(readFileSync(join(configDir, 'acl'), 'utf8')).toBe(readFileSync(join(ROOT, 'deploy/mosquitto/acl'), 'utf8'));
    } finally {
      for (const c of opened) c.end(true);
      await broker?.stop();
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
