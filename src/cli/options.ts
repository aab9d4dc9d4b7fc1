/**
 * `msc-gateway run` options: flags, MSC_* environment and the config file, validated by one zod schema.
 * Errors name the offending field path.
 */
import { parseArgs } from 'node:util';
import { applyOverrides, ConfigError, overridesFromEnv, parseConfig, readConfigFile, type Overrides } from '../config.js';

export const USAGE = `Usage: msc-gateway [run] [options]
       msc-gateway tokens add --name NAME --role viewer|operator|engineer|admin | list | revoke NAME  [--data-dir DIR]
       msc-gateway users set-password NAME --printed-name "Full Name" | list  [--data-dir DIR]  (password on stdin)
       msc-gateway audit verify [--data-dir DIR]
       msc-gateway export SESSION --out FILE [--format csv|json] [--every 10s] [--device ID] [--data-dir DIR]

Reads MSC-reactor consoles over serial and/or MQTT and serves their live data.

Options:
  --config FILE          YAML or JSON configuration file (see README, "Configuration")
  --serial PATH          serial port of a console; repeat for more ports
  --mqtt URL             MQTT broker, e.g. mqtt://127.0.0.1:1883
  --mqtt-prefix PREFIX   topic prefix (default msc/v1)
  --mqtt-client-id ID    stable client id of the persistent session (default msc-gateway-<hostname>)
  --mqtt-username NAME   broker user (the password: MSC_MQTT_PASSWORD or --mqtt-password-file, never a flag)
  --mqtt-password-file F file holding the broker password (first line)
  --mqtt-ca FILE         CA certificate (PEM) that signed the broker's, for mqtts://
  --mqtt-cert FILE       client certificate (PEM), with --mqtt-key, for brokers that require one
  --mqtt-key FILE        its private key (PEM)
  --http HOST:PORT       HTTP listen address (default 127.0.0.1:8080)
  --data-dir DIR         journal directory (default ./data)
  --no-journal           keep nothing (live view only)
  --durability MODE      relaxed (default: ack once written, fsync every 200 ms) or strict (fsync before each ack)
  --influx URL           InfluxDB, http://[user:pass@]host:8086/DB
  --alarm-profile FILE   alarm rule profile (YAML/JSON)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent (default info)
  -h, --help             this help
  --version              print the version

Every option can also come from the environment: MSC_HTTP, MSC_SERIAL (comma-separated), MSC_MQTT,
MSC_MQTT_PREFIX, MSC_MQTT_CLIENT_ID, MSC_MQTT_USERNAME, MSC_MQTT_PASSWORD, MSC_MQTT_PASSWORD_FILE, MSC_MQTT_CA,
MSC_MQTT_CERT, MSC_MQTT_KEY, MSC_DATA_DIR, MSC_INFLUX, MSC_ALARM_PROFILE, MSC_LOG_LEVEL, MSC_DURABILITY;
MSC_HTTP_ALLOWED_ORIGINS (comma-separated, config http.allowedOrigins) has no flag.
Precedence: defaults < --config file < environment < flags.
`;

const OPTIONS = {
  config: { type: 'string' },
  serial: { type: 'string', multiple: true },
  mqtt: { type: 'string' },
  'mqtt-prefix': { type: 'string' },
  'mqtt-client-id': { type: 'string' },
  'mqtt-username': { type: 'string' },
  'mqtt-password-file': { type: 'string' },
  'mqtt-ca': { type: 'string' },
  'mqtt-cert': { type: 'string' },
  'mqtt-key': { type: 'string' },
  http: { type: 'string' },
  'data-dir': { type: 'string' },
  'no-journal': { type: 'boolean' },
  durability: { type: 'string' },
  influx: { type: 'string' },
  'alarm-profile': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

export function loadConfigFromArgs(argv: string[], env: NodeJS.ProcessEnv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0 && !(positionals.length === 1 && positionals[0] === 'run')) {
    throw new ConfigError([`unknown command: ${positionals.join(' ')}`]);
  }
  const flags: Overrides = {
    http: values.http, serial: values.serial, mqtt: values.mqtt, mqttPrefix: values['mqtt-prefix'],
    mqttClientId: values['mqtt-client-id'], mqttUsername: values['mqtt-username'],
    mqttPasswordFile: values['mqtt-password-file'], mqttCa: values['mqtt-ca'], mqttCert: values['mqtt-cert'],
    mqttKey: values['mqtt-key'], dataDir: values['data-dir'], influx: values.influx,
    alarmProfile: values['alarm-profile'], logLevel: values['log-level'], noJournal: values['no-journal'],
    durability: values.durability,
  };
  const raw = values.config ? readConfigFile(values.config) : {};
  const config = parseConfig(applyOverrides(raw, overridesFromEnv(env), flags));
  return { config, help: values.help === true, version: values.version === true };
}

