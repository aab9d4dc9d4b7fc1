/**
 * Configuration: one zod schema with defaults. Sources, lowest to highest precedence:
 * schema defaults < config file (YAML or JSON) < MSC_* environment < command-line flags.
 * Errors name the offending field path; the CLI exits 2 before anything starts.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AuthConfigSchema } from './auth/tokenStore.js';
import { isValidTimeZone, processTimeZone } from './record/time.js';
import { normaliseOrigin } from './util/origin.js';

const hostPort = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
});

const httpConfig = hostPort.extend({
  /**
   * Browser origins allowed to open the live stream besides the gateway's own (Origin host = Host header), e.g.
   * `https://ward-gw.example.org` behind a TLS proxy that rewrites Host. Upgrades without an Origin (not a browser) are not affected.
   */
  allowedOrigins: z
    .array(z.string().transform((text, ctx) => {
      const origin = normaliseOrigin(text);
      if (origin === null) {
        ctx.addIssue({ code: 'custom', message: `must be an origin, http(s)://host[:port] with no path: ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      return origin;
    }))
    .max(64)
    .default([]),
});

const serialPort = z.object({
  path: z.string().min(1),
  baudRate: z.number().int().positive().default(115200),
});

const filePath = z.string().min(1);

const mqttConfig = z.object({
  url: z.string().regex(/^(mqtts?|wss?|tcp):\/\/.+/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  prefix: z.string().min(1).regex(/^[^#+]+$/, 'must not contain MQTT wildcards').default('msc/v1'),
  /** Stable client id: the broker keeps this gateway's persistent session under it. */
  clientId: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
  /** Prefer passwordFile or MSC_MQTT_PASSWORD: a password in a config file is one more copy to guard. */
  password: z.string().min(1).optional(),
  /** A file holding the password (its first line), read at start (transports/mqttSecrets.ts). */
  passwordFile: filePath.optional(),
  /** TLS (mqtts://, wss://): PEM files read at start. `ca`: the CA that signed the broker's certificate. */
  ca: filePath.optional(),
  /** Client certificate and its key, for brokers that require one (both or neither). */
  cert: filePath.optional(),
  key: filePath.optional(),
  /** 5 (default) or 4 for MQTT 3.1.1-only brokers; the session is persistent with either. */
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
}).superRefine((m, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (m.password !== undefined && m.passwordFile !== undefined) issue('passwordFile', 'give password or passwordFile, not both');
  const hasSecret = m.password !== undefined || m.passwordFile !== undefined;
  // MQTT sends no password without a user name (MQTT 5 §3.1.2.9 allows it, mosquitto refuses it).
  if (hasSecret && m.username === undefined && !/^[a-z]+:\/\/[^/@]+@/.test(m.url)) issue('username', 'required with a password');
  if ((m.cert === undefined) !== (m.key === undefined)) issue(m.cert === undefined ? 'cert' : 'key', 'cert and key go together');
  // A CA or client certificate on a plain URL would be ignored, and the password sent in clear.
  const tls = /^(mqtts|wss):/.test(m.url);
  for (const key of ['ca', 'cert', 'key'] as const) {
    if (m[key] !== undefined && !tls) issue(key, 'needs an mqtts:// or wss:// url');
  }
});

/** Printable one-line text: no control characters (it is printed on the perfusion record's header). */
const siteText = z.string().trim().min(1).max(120).regex(/^[^\u0000-\u001F\u007F-\u009F]*$/, 'must be one line of printable text');

/** The site named on every perfusion record (docs/engineer.md, "Perfusion record"). */
const siteConfig = z.object({
  /** Hospital or ward, e.g. `Charité CVK, ICU 2`; none by default. */
  name: siteText.nullable().default(null),
  /** This gateway's name on the record; the host name by default. */
  gateway: siteText.nullable().default(() => hostname()),
  /** IANA zone the record's local times are shown in (`Europe/Berlin`); the process's zone by default. */
  timeZone: z.string().refine(isValidTimeZone, 'must be an IANA time zone name such as Europe/Berlin or UTC')
    .default(() => processTimeZone()),
});

const influxConfig = z.object({
  /** `http://[user:pass@]host:8086/DB` (InfluxDB v1 HTTP API; 2.x and 3 Core through their v1 compatibility API). */
  url: z.string().regex(/^https?:\/\/[^/]+\/[^/?#]+$/, 'must be http(s)://[user:pass@]host:port/DATABASE'),
  token: z.string().optional(),
  batchLines: z.number().int().min(1).max(50_000).default(5000),
  batchMs: z.number().int().min(10).max(60_000).default(1000),
});

export const ConfigSchema = z
  .object({
    http: httpConfig.prefault({}),
    serial: z.array(serialPort).default([]),
    mqtt: mqttConfig.nullable().default(null),
    dataDir: z.string().min(1).default('./data'),
    /** Set false to run without the journal (live view only; nothing is kept). */
    journal: z.boolean().default(true),
    /** What an MQTT acknowledgement promises (docs/storage.md, "Durability modes"). */
    durability: z
      .object({
        /** relaxed: acked once written (survives kill -9), fsynced every syncIntervalMs; strict: acked after the fsync. */
        mode: z.enum(['relaxed', 'strict']).default('relaxed'),
        /** relaxed: longest a written sample waits for its fsync, ms (the power-cut window). */
        syncIntervalMs: z.number().int().min(10).max(10_000).default(200),
      })
      .prefault({}),
    influx: influxConfig.nullable().default(null),
    retention: z
      .object({
        days: z.number().positive().default(14),
        maxGiB: z.number().positive().default(20),
      })
      .prefault({}),
    alarms: z
      .object({
        /** YAML/JSON alarm profile overriding the default MSC profile per model or device. */
        profile: z.string().min(1).optional(),
      })
      .prefault({}),
    /**
     * Consoles the gateway holds at most. A console exists once it sent a valid HELLO; a new one beyond this is
     * refused and counted (msc_discards_total reason too_many_consoles), so invented ids cannot grow it.
     */
    maxConsoles: z.number().int().min(1).max(10_000).default(64),
    /** A console silent this long outside a session is forgotten in memory (its journal rows stay); 0: never. */
    forgetSilentS: z.number().int().min(0).max(365 * 86_400).default(86_400),
    site: siteConfig.prefault({}),
    /** Tokens provisioned as SHA-256 hashes, and the write-route rate limit. */
    auth: AuthConfigSchema.prefault({}),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Formats zod issues as `path.to.field: message`. */
export function formatIssues(error: z.ZodError, root = ''): string[] {
  return error.issues.map((i) => {
    const path = [root, ...i.path.map(String)].filter(Boolean).join('.');
    return `${path || '(root)'}: ${i.message}`;
  });
}

export function parseConfig(input: unknown): Config {
  const result = ConfigSchema.safeParse(input);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return deepFreeze(result.data);
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`--config: cannot read ${file}: ${(err as Error).message}`]);
  }
  try {
    const data = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
    if (data === null || data === undefined) return {};
    if (typeof data !== 'object' || Array.isArray(data)) throw new Error('top level must be a mapping');
    return data as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`--config: ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}`]);
  }
}

/** `HOST:PORT`, `:PORT` or `[v6]:PORT`. */
export function parseHostPort(text: string, field: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError([`${field}: expected HOST:PORT, got ${JSON.stringify(text)}`]);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export interface Overrides {
  http?: string;
  allowedOrigins?: string[];
  serial?: string[];
  mqtt?: string;
  mqttPrefix?: string;
  mqttClientId?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  mqttPasswordFile?: string;
  mqttCa?: string;
  mqttCert?: string;
  mqttKey?: string;
  dataDir?: string;
  influx?: string;
  alarmProfile?: string;
  logLevel?: string;
  noJournal?: boolean;
  durability?: string;
  siteName?: string;
  siteTimeZone?: string;
}

/** MSC_* environment variables, documented in the README's configuration reference. */
export function overridesFromEnv(env: NodeJS.ProcessEnv): Overrides {
  const o: Overrides = {};
  if (env.MSC_HTTP) o.http = env.MSC_HTTP;
  if (env.MSC_HTTP_ALLOWED_ORIGINS) o.allowedOrigins = env.MSC_HTTP_ALLOWED_ORIGINS.split(',').map((s) => s.trim()).filter(Boolean);
  if (env.MSC_SERIAL) o.serial = env.MSC_SERIAL.split(',').map((s) => s.trim()).filter(Boolean);
  if (env.MSC_MQTT) o.mqtt = env.MSC_MQTT;
  if (env.MSC_MQTT_PREFIX) o.mqttPrefix = env.MSC_MQTT_PREFIX;
  if (env.MSC_MQTT_CLIENT_ID) o.mqttClientId = env.MSC_MQTT_CLIENT_ID;
  if (env.MSC_MQTT_USERNAME) o.mqttUsername = env.MSC_MQTT_USERNAME;
  if (env.MSC_MQTT_PASSWORD) o.mqttPassword = env.MSC_MQTT_PASSWORD;
  if (env.MSC_MQTT_PASSWORD_FILE) o.mqttPasswordFile = env.MSC_MQTT_PASSWORD_FILE;
  if (env.MSC_MQTT_CA) o.mqttCa = env.MSC_MQTT_CA;
  if (env.MSC_MQTT_CERT) o.mqttCert = env.MSC_MQTT_CERT;
  if (env.MSC_MQTT_KEY) o.mqttKey = env.MSC_MQTT_KEY;
  if (env.MSC_DATA_DIR) o.dataDir = env.MSC_DATA_DIR;
  if (env.MSC_INFLUX) o.influx = env.MSC_INFLUX;
  if (env.MSC_ALARM_PROFILE) o.alarmProfile = env.MSC_ALARM_PROFILE;
  if (env.MSC_LOG_LEVEL) o.logLevel = env.MSC_LOG_LEVEL;
  if (env.MSC_DURABILITY) o.durability = env.MSC_DURABILITY;
  if (env.MSC_SITE_NAME) o.siteName = env.MSC_SITE_NAME;
  if (env.MSC_SITE_TIMEZONE) o.siteTimeZone = env.MSC_SITE_TIMEZONE;
  return o;
}

/** Applies overrides on top of a raw (unvalidated) config object. Later overrides win. */
export function applyOverrides(raw: Record<string, unknown>, ...layers: Overrides[]): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(raw);
  const obj = (key: string): Record<string, unknown> => {
    const cur = out[key];
    const next = cur && typeof cur === 'object' && !Array.isArray(cur) ? { ...(cur as object) } : {};
    out[key] = next;
    return next as Record<string, unknown>;
  };
  for (const o of layers) {
    // Only the address: the rest of `http` (allowedOrigins) stays as configured.
    if (o.http !== undefined) Object.assign(obj('http'), parseHostPort(o.http, 'http'));
    if (o.allowedOrigins !== undefined) obj('http').allowedOrigins = o.allowedOrigins;
    if (o.serial !== undefined && o.serial.length > 0) out.serial = o.serial.map((path) => ({ path }));
    if (o.mqtt !== undefined) obj('mqtt').url = o.mqtt;
    if (o.mqttPrefix !== undefined) obj('mqtt').prefix = o.mqttPrefix;
    if (o.mqttClientId !== undefined) obj('mqtt').clientId = o.mqttClientId;
    if (o.mqttUsername !== undefined) obj('mqtt').username = o.mqttUsername;
    // A password from a later layer replaces the earlier one in whichever form it came.
    if (o.mqttPassword !== undefined) {
      obj('mqtt').password = o.mqttPassword;
      delete obj('mqtt').passwordFile;
    }
    if (o.mqttPasswordFile !== undefined) {
      obj('mqtt').passwordFile = o.mqttPasswordFile;
      delete obj('mqtt').password;
    }
    if (o.mqttCa !== undefined) obj('mqtt').ca = o.mqttCa;
    if (o.mqttCert !== undefined) obj('mqtt').cert = o.mqttCert;
    if (o.mqttKey !== undefined) obj('mqtt').key = o.mqttKey;
    if (o.dataDir !== undefined) out.dataDir = o.dataDir;
    if (o.influx !== undefined) obj('influx').url = o.influx;
    if (o.alarmProfile !== undefined) obj('alarms').profile = o.alarmProfile;
    if (o.logLevel !== undefined) obj('log').level = o.logLevel;
    if (o.noJournal) out.journal = false;
    if (o.durability !== undefined) obj('durability').mode = o.durability;
    if (o.siteName !== undefined) obj('site').name = o.siteName;
    if (o.siteTimeZone !== undefined) obj('site').timeZone = o.siteTimeZone;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value as object)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
