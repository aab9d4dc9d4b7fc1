/**
 * docker-compose.yml, the Dockerfile and the Grafana provisioning checked against the gateway's own
 * configuration code. Docker cannot run on the build machines, so this is how the files are kept
 * honest: services, pinned images, ports, MSC_* names the gateway accepts, mounted files that exist, the
 * healthcheck on /healthz, a non-root user, and the simulators' arguments parsed by msc-sim itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../../device-sim/src/cli.js';
import { applyOverrides, overridesFromEnv, parseConfig } from '../../src/config.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const compose = parse(read('docker-compose.yml'));
const services = compose.services as Record<string, any>;
const envExample = Object.fromEntries(read('.env.example').split('\n')
  .filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

/** Compose variable interpolation (`${X}`, `${X:-default}`, `${X:?message}`) with .env.example as the .env. */
function interpolate(s: string): string {
  return s.replace(/\$\{([A-Z_]+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    if (name in envExample) return envExample[name];
    if (op === '-') return arg ?? '';
    throw new Error(`\${${name}} is not set in .env.example`);
  });
}
const envOf = (svc: any): Record<string, string> => Object.fromEntries(
  Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
const containerPorts = (svc: any) => (svc.ports ?? []).map((p: string) => Number(interpolate(p).split(':').at(-1)));
const bindMounts = (svc: any) => (svc.volumes ?? []).filter((v: string) => v.startsWith('./'))
  .map((v: string) => { const [src, dst, mode] = v.split(':'); return { src, dst, mode }; });

describe('docker-compose.yml', () => {
  it('has the broker, InfluxDB, Grafana, the gateway and two simulated consoles', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway', 'grafana', 'influxdb', 'mosquitto', 'sim-ward-a', 'sim-ward-b']);
  });

  it('pins every image to a version (no latest, no bare name)', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.image, name).toMatch(/^[\w./-]+:\d+\.\d+(\.\d+)?[\w.-]*$/);
    }
    expect(services.influxdb.image).toMatch(/^influxdb:1\./); // 1.x serves the v1 API (/write, InfluxQL)
    expect(services.mosquitto.image).toMatch(/^eclipse-mosquitto:2\.0\.\d+$/);
    expect(services.grafana.image).toMatch(/^grafana\/grafana:1[12]\.\d+\.\d+$/);
    for (const from of read('Dockerfile').matchAll(/^FROM\s+(\S+)/gm)) expect(from[1]).toMatch(/^node:\d+\.\d+\.\d+-/);
  });

  it('configures the gateway only through MSC_* variables it accepts, pointing at the compose services', () => {
    const gw = services.gateway;
    const env = envOf(gw);
    for (const key of Object.keys(env)) {
      expect(key).toMatch(/^MSC_/);
      expect(Object.keys(overridesFromEnv({ [key]: env[key] })), `${key} is read by overridesFromEnv`).toHaveLength(1);
    }
    const config = parseConfig(applyOverrides({}, overridesFromEnv(env)));
    expect(config.http).toEqual({ host: '0.0.0.0', port: 8080, allowedOrigins: [] });
    expect(containerPorts(gw)).toEqual([config.http.port]);
    const mqtt = new URL(config.mqtt!.url);
    expect(mqtt.hostname).toBe('mosquitto');
    expect(containerPorts(services.mosquitto)).toContain(Number(mqtt.port));
    expect(config.mqtt!.clientId).toBeTruthy(); // a stable persistent session across container restarts
    const influx = new URL(config.influx!.url);
    expect(influx.hostname).toBe('influxdb');
    expect(influx.port).toBe('8086');
    expect(influx.pathname).toBe(`/${envOf(services.influxdb).INFLUXDB_DB}`);
    expect(decodeURIComponent(influx.username)).toBe(envOf(services.influxdb).INFLUXDB_WRITE_USER);
    // The data directory is a named volume, not the container's writable layer.
    expect(gw.volumes).toContain(`gateway-data:${config.dataDir}`);
    expect(Object.keys(compose.volumes)).toContain('gateway-data');
  });

  it('health-checks the gateway on /healthz at its port, and builds it from this repository', () => {
    const test = services.gateway.healthcheck.test.join(' ');
    expect(test).toContain('http://127.0.0.1:8080/healthz');
    expect(services.gateway.build).toBe('.');
    expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
  });

  // Made on the deployment host by scripts/mqtt-compose-setup.sh, never committed (they hold hashes and a key).
  const GENERATED = ['./deploy/mosquitto/passwd', './deploy/mosquitto/certs', './deploy/mosquitto/certs/ca.crt'];

  it('mounts only files that exist or that the setup script makes (and git ignores), read-only', () => {
    const mounts = Object.values(services).flatMap(bindMounts);
    expect(mounts.length).toBeGreaterThanOrEqual(3);
    const setup = read('scripts/mqtt-compose-setup.sh');
    const ignored = read('.gitignore').split('\n');
    for (const m of mounts) {
      expect(m.mode, m.src).toBe('ro');
      if (GENERATED.includes(m.src)) {
        const path = m.src.slice(2);
        expect(ignored.some((l) => l === path || (l.endsWith('/') && `${path}/`.startsWith(l))), `${path} in .gitignore`).toBe(true);
        expect(setup.includes(path.replace(/\/ca\.crt$/, '/')), `${path} made by mqtt-compose-setup.sh`).toBe(true);
      } else {
        expect(existsSync(join(ROOT, m.src)), m.src).toBe(true);
      }
    }
    expect(bindMounts(services.mosquitto)).toEqual(expect.arrayContaining([
      { src: './deploy/mosquitto/mosquitto.conf', dst: '/mosquitto/config/mosquitto.conf', mode: 'ro' },
      { src: './deploy/mosquitto/acl', dst: '/mosquitto/config/acl', mode: 'ro' },
      { src: './deploy/mosquitto/passwd', dst: '/mosquitto/config/passwd', mode: 'ro' },
      { src: './deploy/mosquitto/certs', dst: '/mosquitto/certs', mode: 'ro' },
    ]));
  });

  it('locks the broker: no anonymous access, the mounted password file and ACL, TLS on 8883 and no plain listener', () => {
    const conf = read('deploy/mosquitto/mosquitto.conf');
    const directives = conf.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    const value = (key: string) => directives.filter((l) => l.split(' ')[0] === key).map((l) => l.slice(key.length + 1));
    expect(value('allow_anonymous')).toEqual(['false']);
    expect(value('per_listener_settings')).not.toContain('true');
    expect(value('password_file')).toEqual(['/mosquitto/config/passwd']);
    expect(value('acl_file')).toEqual(['/mosquitto/config/acl']);
    expect(value('listener')).toEqual(['8883']);
    // Listener settings follow their listener line.
    const afterListener = directives.slice(directives.findIndex((l) => l.startsWith('listener ')));
    for (const key of ['use_username_as_clientid true', 'certfile /mosquitto/certs/server.crt', 'keyfile /mosquitto/certs/server.key']) {
      expect(afterListener, key).toContain(key);
    }
    expect(containerPorts(services.mosquitto)).toEqual([8883]);
    expect(services.mosquitto.ports[0]).toMatch(/^\$\{MQTT_BIND:-127\.0\.0\.1\}:8883:8883$/);
  });

  it('gives the gateway its broker user (with an ACL block), the password from .env and the broker\'s CA', () => {
    const env = envOf(services.gateway);
    const config = parseConfig(applyOverrides({}, overridesFromEnv(env)));
    expect(config.mqtt!.url).toBe('mqtts://mosquitto:8883');
    expect(config.mqtt!.username).toBe('msc-gateway-1');
    expect(services.gateway.environment.MSC_MQTT_PASSWORD).toBe('${MQTT_GATEWAY_PASSWORD:?set in .env}');
    expect(bindMounts(services.gateway)).toContainEqual({ src: './deploy/mosquitto/certs/ca.crt', dst: config.mqtt!.ca, mode: 'ro' });
    const acl = read('deploy/mosquitto/acl');
    expect(acl).toMatch(/^user msc-gateway-1\ntopic read msc\/v1\/#\ntopic write msc\/v1\/\+\/cmd$/m);
    expect(read('scripts/mqtt-compose-setup.sh')).toMatch(/^add msc-gateway-1 MQTT_GATEWAY_PASSWORD --gateway$/m);
  });

  it('provisions Grafana with the InfluxDB service and the dashboards directory', () => {
    const mounts = bindMounts(services.grafana);
    const ds = parse(read('deploy/grafana/provisioning/datasources/influxdb.yaml')).datasources[0];
    expect(ds).toMatchObject({ type: 'influxdb', uid: 'msc-influx', url: 'http://influxdb:8086' });
    expect(ds.jsonData.dbName).toBe(envOf(services.influxdb).INFLUXDB_DB);
    // Grafana reads the credentials from its environment, which compose fills from .env.
    for (const v of [ds.user, ds.secureJsonData.password]) expect(Object.keys(envOf(services.grafana))).toContain(/^\$\{(\w+)\}$/.exec(v)![1]);
    const provider = parse(read('deploy/grafana/provisioning/dashboards/msc.yaml')).providers[0];
    expect(mounts).toContainEqual({ src: './dashboards', dst: provider.options.path, mode: 'ro' });
    expect(mounts.map((m: { dst: string }) => m.dst)).toContain('/etc/grafana/provisioning');
  });

  it('runs the simulated consoles with arguments msc-sim accepts, against the compose broker', () => {
    for (const name of ['sim-ward-a', 'sim-ward-b']) {
      const svc = services[name];
      expect(svc.entrypoint).toEqual(['node', 'dist/device-sim/src/cli.js']);
      const parsed = parseCli(svc.command);
      expect(parsed.kind, JSON.stringify(parsed)).toBe('run');
      expect(svc.command).toEqual(expect.arrayContaining(['--mqtt', 'mqtts://mosquitto:8883', '--auto-run']));
      const ca = svc.command[svc.command.indexOf('--mqtt-ca') + 1];
      expect(bindMounts(svc)).toContainEqual({ src: './deploy/mosquitto/certs/ca.crt', dst: ca, mode: 'ro' });
      // The console logs in as its device id (the ACL's %u rules): the setup script makes that user from .env.
      const deviceId = `${svc.command[svc.command.indexOf('--id') + 1]}-0001`;
      const variable = /^\$\{(\w+):\?[^}]*\}$/.exec(svc.environment.MSC_SIM_MQTT_PASSWORD)![1];
      expect(envExample[variable], variable).toBeTruthy();
      expect(read('scripts/mqtt-compose-setup.sh')).toMatch(new RegExp(`^add ${deviceId} ${variable}$`, 'm'));
      const scenario = svc.command[svc.command.indexOf('--scenario') + 1];
      if (svc.command.includes('--scenario')) expect(existsSync(join(ROOT, scenario))).toBe(true);
    }
  });

  it('commits no secret: every password comes from .env, and .env stays out of the image', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [key, value] of Object.entries(svc.environment ?? {})) {
        if (/PASSWORD|TOKEN|SECRET/.test(key)) expect(value, `${name}.${key}`).toMatch(/^\$\{\w+(:[?-][^}]*)?\}$/);
      }
    }
    expect(services.gateway.environment.MSC_INFLUX).toMatch(/^http:\/\/\$\{\w+[^}]*\}:\$\{\w+[^}]*\}@/);
    expect(read('.dockerignore')).toMatch(/^\.env$/m);
    expect(read('.gitignore') + read('.dockerignore')).toMatch(/^node_modules$/m);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  it('runs the gateway as a non-root user with its data directory on a volume', () => {
    const user = /^USER\s+(\S+)/m.exec(runtime)?.[1];
    expect(user).toBeTruthy();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(runtime).toMatch(/^VOLUME \["\/var\/lib\/msc-gateway"\]$/m);
    expect(runtime).toMatch(/MSC_HTTP=0\.0\.0\.0:8080/);
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\/index\.js"\]$/m);
  });
});

describe('systemd unit', () => {
  it('runs the built CLI as its own user with a state directory and SIGTERM', () => {
    const unit = read('deploy/systemd/msc-gateway.service');
    expect(unit).toMatch(/^User=msc-gateway$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/msc-gateway\/dist\/src\/cli\/index\.js /m);
    expect(unit).toMatch(/^StateDirectory=msc-gateway$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^\[Install\]\nWantedBy=multi-user\.target$/m);
  });
});
