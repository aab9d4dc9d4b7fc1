/**
 * Codec throughput on one core: realistic 16-channel `T` frames (values random-walk, seq counts up
 * through the 2^32 wrap) decoded by decodeLine alone and behind the LineSplitter, next to the ceiling a
 * serial port can deliver (ICD §1: 115200 baud 8N1 = 11520 bytes/s).
 */
import { once } from 'node:events';
import { LineSplitter } from '../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../src/protocol/lineSplitter.js';
import { decodeMqttPayload, encodeMqttPayload } from '../src/protocol/mqtt.js';
import { decodeLine, encodeDeviceFrame } from '../src/protocol/serial.js';
import type { TelemetryFrame } from '../src/protocol/types.js';
import type { BenchResult } from './types.js';
import { createRng } from '../device-sim/src/rng.js';

const FRAME_COUNT = 20_000;
const REPETITIONS = 9;
/** Serial reads arrive in small pieces; 256 bytes is a generous read for a 115200 baud port. */
const CHUNK_BYTES = 256;
const SERIAL_BYTES_PER_S = 115_200 / 10; // 8N1: start + 8 data + stop bits per byte
const TARGET = 300_000;

/** Realistic RUNNING values (ICD §1 channel table) and the decimals the device writes them with. */
const CHANNELS: Array<[key: string, mid: number, step: number, decimals: number]> = [
  ['QB', 150, 0.5, 1], ['QP', 30, 0.2, 1], ['QR', 200, 0.5, 1], ['PA', -85, 0.8, 1],
  ['PF', 150, 0.8, 1], ['PV', 110, 0.8, 1], ['PP', 85, 0.5, 1], ['TMP', 45, 0.4, 1],
  ['DPR', 25, 0.2, 1], ['TR', 37, 0.01, 2], ['TB', 36.6, 0.01, 2], ['HEP', 5, 0, 1],
  ['AIR', 0, 0, 0], ['BLD', 0, 0, 0], ['PH', 7.38, 0.005, 2], ['DO', 80, 0.3, 1],
];
const DECIMALS = Object.fromEntries(CHANNELS.map(([k, , , d]) => [k, d]));

export function telemetryFrames(count: number): TelemetryFrame[] {
  const rng = createRng(20261125); // the simulator's seeded mulberry32
  const random = () => rng.next();
  const level = CHANNELS.map(([, mid]) => mid);
  const frames: TelemetryFrame[] = [];
  let seq = 0xffffffff - Math.floor(count / 2); // crosses the wrap halfway
  for (let i = 0; i < count; i++) {
    const v: Record<string, number | null> = {};
    CHANNELS.forEach(([key, mid, step], c) => {
      level[c] += (random() - 0.5) * 2 * step + (mid - level[c]) * 0.01;
      v[key] = key === 'PV' && random() < 0.001 ? null : level[c];
    });
    frames.push({ type: 'T', seq, t: 1764061200000 + i * 100, v });
    seq = (seq + 1) >>> 0;
  }
  return frames;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `pass` REPETITIONS times after one warm-up; returns the median rate in items per CPU second of
 * this process. CPU time, not wall time: the machine is shared, and "per core" is what we want to know.
 */
async function rate(items: number, pass: () => number | Promise<number>): Promise<number> {
  const expected = await pass();
  const rates: number[] = [];
  for (let r = 0; r < REPETITIONS; r++) {
    const before = process.cpuUsage();
    const got = await pass();
    const used = process.cpuUsage(before);
    if (got !== expected) throw new Error(`bench checksum changed between repetitions: ${got} != ${expected}`);
    rates.push(items / ((used.user + used.system) / 1e6));
  }
  return median(rates);
}

function checkAllDecoded(decoded: number): number {
  if (decoded !== FRAME_COUNT) throw new Error(`decoded ${decoded} of ${FRAME_COUNT} frames`);
  return decoded;
}

export async function run(): Promise<BenchResult[]> {
  const frames = telemetryFrames(FRAME_COUNT);
  const wire = frames.map((f) => encodeDeviceFrame(f, DECIMALS));
  const lines = wire.map((w) => w.slice(0, -2));
  const bytes = Buffer.from(wire.join(''), 'latin1');
  const meanBytes = bytes.length / FRAME_COUNT;
  const ceiling = SERIAL_BYTES_PER_S / meanBytes;
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) chunks.push(bytes.subarray(i, i + CHUNK_BYTES));

  const decodeOnly = await rate(FRAME_COUNT, () => {
    let decoded = 0;
    for (let i = 0; i < lines.length; i++) {
      const r = decodeLine(lines[i]);
      if (r.length === 1 && r[0].type === 'T') decoded++;
    }
    return checkAllDecoded(decoded);
  });

  const withSplitter = await rate(FRAME_COUNT, async () => {
    const splitter = new LineSplitter();
    let decoded = 0;
    splitter.on('data', (o: SplitterOutput) => {
      if (o.kind !== 'line') return;
      const r = decodeLine(o.line);
      if (r.length === 1 && r[0].type === 'T') decoded++;
    });
    const ended = once(splitter, 'end');
    for (const c of chunks) splitter.write(c);
    splitter.end();
    await ended;
    return checkAllDecoded(decoded);
  });

  const encode = await rate(FRAME_COUNT, () => {
    let length = 0;
    for (let i = 0; i < frames.length; i++) length += encodeDeviceFrame(frames[i], DECIMALS).length;
    return length;
  });

  const batches: Buffer[] = [];
  for (let i = 0; i < frames.length; i += 100) batches.push(Buffer.from(encodeMqttPayload(frames.slice(i, i + 100))));
  const mqtt = await rate(FRAME_COUNT, () => {
    let decoded = 0;
    for (const b of batches) decoded += decodeMqttPayload('telemetry', b, 'MSC-0001').frames.length;
    return checkAllDecoded(decoded);
  });

  const headroom = (fps: number): string => `${Math.round(fps / ceiling)}x the serial ceiling of one port`;
  const ceilingNote = `serial ceiling ${ceiling.toFixed(1)} frames/s per port`;
  const common = `16-channel T frames, mean ${meanBytes.toFixed(1)} B, median of ${REPETITIONS}, per CPU second`;
  return [
    { name: 'codec.decodeLine', value: decodeOnly, unit: 'frames/s', target: `>= ${TARGET}`, baseline: ceilingNote, note: `${common}; ${headroom(decodeOnly)}` },
    {
      name: 'codec.splitter+decodeLine', value: withSplitter, unit: 'frames/s', target: `>= ${TARGET}`, baseline: ceilingNote,
      note: `${common}, ${CHUNK_BYTES} B chunks; ${headroom(withSplitter)}`,
    },
    {
      name: 'codec.serialCeiling', value: ceiling, unit: 'frames/s', baseline: '115200 baud 8N1 = 11520 B/s',
      note: `11520 B/s / ${meanBytes.toFixed(1)} B per frame, one port`,
    },
    { name: 'codec.meanFrameBytes', value: meanBytes, unit: 'bytes', note: '16 channels incl. `$`, `*CRC` and CR LF' },
    { name: 'codec.encodeDeviceFrame', value: encode, unit: 'frames/s', note: `simulator side; ${common}` },
    { name: 'codec.mqttTelemetryDecode', value: mqtt, unit: 'frames/s', note: `batches of 100 samples, zod-validated; ${common}` },
  ];
}
