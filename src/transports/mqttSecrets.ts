/**
 * The files behind `mqtt.passwordFile`, `mqtt.ca`, `mqtt.cert` and `mqtt.key`, read once at start so a missing or
 * unreadable file stops the gateway with the config key that names it, rather than turning into a broker that
 * refuses every connection attempt for ever. The error names the file, never its content.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '../config.js';

export interface MqttSecrets {
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

type MqttConfig = NonNullable<Config['mqtt']>;

function read(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([`mqtt.${key}: cannot read ${path}${code ? ` (${code})` : ''}`]);
  }
}

/** The password's file holds it on its first line; the line break an editor or `echo` adds is not part of it. */
function passwordFrom(path: string): string {
  const text = read('passwordFile', path).toString('utf8');
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new ConfigError([`mqtt.passwordFile: ${path} is empty`]);
  return password;
}

function pem(key: 'ca' | 'cert' | 'key', path: string): Buffer {
  const data = read(key, path);
  if (!data.includes('-----BEGIN ')) throw new ConfigError([`mqtt.${key}: ${path} is not a PEM file`]);
  return data;
}

export function loadMqttSecrets(mqtt: MqttConfig): MqttSecrets {
  const out: MqttSecrets = {};
  const password = mqtt.passwordFile !== undefined ? passwordFrom(mqtt.passwordFile) : mqtt.password;
  if (password !== undefined) out.password = password;
  if (mqtt.ca !== undefined) out.ca = pem('ca', mqtt.ca);
  if (mqtt.cert !== undefined) out.cert = pem('cert', mqtt.cert);
  if (mqtt.key !== undefined) out.key = pem('key', mqtt.key);
  return out;
}
