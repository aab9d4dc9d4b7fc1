/** An IngestSink and a logger that record what a transport hands them, for the transport tests. */
import type { DeviceLink, IngestSink } from '../../src/model/types.js';
import type { DeviceFrame, Discard } from '../../src/protocol/types.js';
import type { TransportLogger } from '../../src/transports/types.js';

export type SinkCall =
  | { op: 'ingest'; deviceId: string; frames: DeviceFrame[]; link: DeviceLink }
  | { op: 'discard'; deviceId: string | null; source: string; d: Discard }
  | { op: 'linkDown'; deviceId: string; reason: string }
  | { op: 'reconnected'; deviceId: string };

/** `setGate` makes ingest resolve only when the test says so (durability withheld). */
export function recordingSink() {
  const calls: SinkCall[] = [];
  let gate: ((frames: DeviceFrame[]) => Promise<void>) | null = null;
  const sink: IngestSink = {
    ingest: (deviceId, frames, link) => {
      calls.push({ op: 'ingest', deviceId, frames, link });
      return gate ? gate(frames) : Promise.resolve();
    },
    discard: (deviceId, source, d) => { calls.push({ op: 'discard', deviceId, source, d }); },
    linkDown: (deviceId, reason) => { calls.push({ op: 'linkDown', deviceId, reason }); },
    reconnected: (deviceId) => { calls.push({ op: 'reconnected', deviceId }); },
  };
  const ingests = (id?: string) =>
    calls.filter((c): c is Extract<SinkCall, { op: 'ingest' }> => c.op === 'ingest' && (!id || c.deviceId === id));
  const frames = (id?: string) => ingests(id).flatMap((c) => c.frames);
  const link = (id: string) => ingests(id)[0]?.link;
  const seqs = () => frames().flatMap((f) => (f.type === 'T' ? [f.seq] : []));
  return { sink, calls, frames, link, seqs, setGate: (g: typeof gate) => { gate = g; } };
}

/** A TransportLogger that keeps every line with its bound object (to check what reaches the log). */
export function capturingLogger() {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const fn = (level: string) => (a: object | string, b?: string) => {
    lines.push(typeof a === 'string' ? { level, msg: a, obj: {} } : { level, msg: b ?? '', obj: a });
  };
  const logger: TransportLogger = { info: fn('info'), warn: fn('warn'), error: fn('error'), debug: fn('debug'), child: () => logger };
  return { logger, lines };
}
