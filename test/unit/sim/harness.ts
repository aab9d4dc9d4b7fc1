/** A console on a hand-stepped clock, with every frame it emits collected. */
import { encodeCommand, decodeCommandLine } from '../../../src/protocol/serial.js';
import type { CommandDecode } from '../../../src/protocol/serial.js';
import type { EventFrame, StateFrame, TelemetryFrame } from '../../../src/protocol/types.js';
import { parseSimAction } from '../../../device-sim/src/actions.js';
import type { SimActionInput } from '../../../device-sim/src/actions.js';
import { SimClock } from '../../../device-sim/src/clock.js';
import { SimulatedConsole } from '../../../device-sim/src/console.js';
import type { ConsoleFrame, ConsoleOptions } from '../../../device-sim/src/console.js';
import { applyConsoleAction } from '../../../device-sim/src/faults.js';

export const EPOCH = Date.UTC(2026, 10, 25, 9, 0, 0);

export interface Harness {
  console: SimulatedConsole;
  clock: SimClock;
  frames: ConsoleFrame[];
  /** Sends `$CMD,...` through the serial codec, as a gateway would. */
  send(cmdId: string, verb: string, ...args: Array<string | number>): void;
  /** Applies a scenario action now. */
  act(input: SimActionInput): void;
  advance(ms: number): void;
  /** Frames emitted since `from` (an index into frames). */
  since(from: number): ConsoleFrame[];
  telemetry(from?: number): TelemetryFrame[];
  states(from?: number): StateFrame[];
  events(from?: number): EventFrame[];
}

export function harness(opts: Partial<ConsoleOptions> = {}): Harness {
  const clock = new SimClock();
  const console = new SimulatedConsole({ deviceId: 'MSC-0001', clock, seed: 7, startEpochMs: EPOCH, ...opts });
  const frames: ConsoleFrame[] = [];
  console.onFrame((f) => frames.push(f));
  console.start();
  const since = (from = 0): ConsoleFrame[] => frames.slice(from);
  return {
    console, clock, frames, since,
    send(cmdId, verb, ...args) {
      const line = encodeCommand({ cmdId, verb: verb as never, args }).replace(/\r\n$/, '');
      const decoded: CommandDecode = decodeCommandLine(line);
      console.receive(decoded);
    },
    act(input) {
      applyConsoleAction(console, parseSimAction(input));
    },
    advance(ms) {
      // Steps of 1 s, as a real-time clock would tick, so timers run at their own times.
      let left = ms;
      while (left > 0) {
        const d = Math.min(1000, left);
        clock.advance(d);
        left -= d;
      }
    },
    telemetry: (from = 0) => since(from).filter((f): f is TelemetryFrame => f.type === 'T'),
    states: (from = 0) => since(from).filter((f): f is StateFrame => f.type === 'S'),
    events: (from = 0) => since(from).filter((f): f is EventFrame => f.type === 'EV'),
  };
}

/** PRIME, wait for PRIMED, START: a RUNNING console with the circuit settled. */
export function running(opts: Partial<ConsoleOptions> = {}, settleMs = 60_000): Harness {
  const h = harness({ autoRun: { sessionId: 'S-TEST-1' }, ...opts });
  h.advance(settleMs);
  if (h.console.state !== 'RUNNING') throw new Error(`not RUNNING: ${h.console.state}`);
  return h;
}
