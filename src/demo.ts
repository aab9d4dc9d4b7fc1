/**
 * `npm run demo`: the gateway with two simulated consoles on one machine, needing nothing but Node and npm.
 * An in-process MQTT broker (aedes) stands in for the site's broker; the second console speaks serial through a
 * socat pty pair when socat is installed.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { startSimulator, type Simulator } from '../device-sim/src/index.js';
import { parseConfig } from './config.js';
import { Gateway } from './gateway.js';
import { createLogger } from './log.js';

function hasSocat(): boolean {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  }
  return (server.address() as { port: number }).port;
}

async function main(): Promise<void> {
  const logger = createLogger(process.env.MSC_LOG_LEVEL ?? 'info');
  const broker = await Aedes.createBroker();
  const brokerServer = createServer(broker.handle);
  const brokerPort = await listen(brokerServer, Number(process.env.DEMO_MQTT_PORT ?? 1883));
  const mqttUrl = `mqtt://127.0.0.1:${brokerPort}`;

  const sims: Simulator[] = [];
  const serial = hasSocat();
  if (serial) {
    sims.push(await startSimulator({ transport: 'serial', pty: true, deviceIds: ['MSC-0002'], autoRun: true, seed: 2 }));
  }

  const [host, port] = (process.env.MSC_HTTP ?? '127.0.0.1:8080').split(':');
  const config = parseConfig({
    http: { host, port: Number(port) },
    // aedes speaks MQTT 3.1.1; a site broker such as mosquitto or EMQX takes the default (5).
    mqtt: { url: mqttUrl, clientId: 'msc-gateway-demo', protocolVersion: 4 },
    serial: serial ? [{ path: sims[0].gatewayPath! }] : [],
    dataDir: process.env.MSC_DATA_DIR ?? './data/demo',
    log: { level: process.env.MSC_LOG_LEVEL ?? 'info' },
  });
  const gateway = new Gateway(config, { logger });
  await gateway.start();
  // The demo makes its own operator token and prints it once; only its hash is stored.
  const made = gateway.tokens.add(`demo-operator-${Date.now().toString(36)}`, 'operator', { user: 'demo', role: 'admin' });
  if (!made.ok) throw new Error(`cannot create the demo token: ${made.reason}`);

  sims.push(await startSimulator({
    transport: 'mqtt', mqttUrl, deviceIds: serial ? ['MSC-0001'] : ['MSC-0001', 'MSC-0002'], autoRun: true, seed: 1,
  }));

  const banner = [
    '',
    'msc-gateway demo is running',
    `  live devices:  ${gateway.httpUrl}/api/devices   (Authorization: Bearer <token below>)`,
    `  operator token: ${made.value.token}`,
    `  try:          curl -H 'Authorization: Bearer ${made.value.token}' ${gateway.httpUrl}/api/devices`,
    `  metrics:       ${gateway.httpUrl}/metrics`,
    `  MQTT broker:   ${mqttUrl} (in-process aedes; anonymous, no TLS, loopback only: a demo, not a deployment)`,
    `  consoles:      MSC-0001 over MQTT, MSC-0002 over ${serial ? `serial (${sims[0].gatewayPath})` : 'MQTT (install socat for a serial console)'}`,
    '  stop:          Ctrl-C',
    '',
  ];
  process.stderr.write(banner.join('\n') + '\n');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 5000).unref();
    await Promise.allSettled(sims.map((s) => s.stop()));
    await gateway.stop();
    await new Promise<void>((r) => broker.close(() => r()));
    brokerServer.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
