/**
 * The console's hardware as its firmware sees it: pumps, heater and sensors around the simulated
 * circuit. Holds the noise stream and the sensor faults; the console (the firmware) decides when to
 * sample and what the pumps do.
 */
import type { ChannelValues, SessionState } from '../../src/protocol/types.js';
import { FAST_CHANNELS } from './channels.js';
import { DEFAULT_SETPOINTS, initialCircuit, measure, step } from './circuit.js';
import type { CircuitFaults, CircuitState, PumpMode, Setpoints } from './circuit.js';
import { createRng } from './rng.js';
import type { Rng } from './rng.js';

export interface InstrumentOptions {
  seed: number;
  optionalSensors?: Partial<{ PH: boolean; DO: boolean }>;
  /** Every channel in every frame even above 20 Hz (see FAST_CHANNELS). */
  fullFrames?: boolean;
}

export function pumpModeFor(state: SessionState): PumpMode {
  switch (state) {
    case 'PRIMING': return 'priming';
    case 'PRIMED': case 'PAUSED': return 'standby';
    case 'RUNNING': return 'running';
    case 'RINSEBACK': return 'rinseback';
    default: return 'stopped';
  }
}

export class CircuitInstrument {
  private readonly rng: Rng;
  private readonly faulted = new Set<string>();
  private readonly absent = new Set<string>();
  private circuit: CircuitState = initialCircuit();
  private lastStepAt = 0;
  private samples = 0;

  constructor(private readonly opts: InstrumentOptions) {
    this.rng = createRng(opts.seed);
  }

  get state(): Readonly<CircuitState> { return this.circuit; }
  get setpoints(): Readonly<Setpoints> { return this.circuit.setpoints; }
  get faults(): Readonly<CircuitFaults> { return this.circuit.faults; }

  /** Boot: pumps stopped, default setpoints; the physical circuit (temperatures, clot) is as it was. */
  powerUp(nowMs: number): void {
    this.circuit = { ...this.circuit, mode: 'stopped', setpoints: { ...DEFAULT_SETPOINTS } };
    this.lastStepAt = nowMs;
    this.samples = 0;
  }

  setMode(mode: PumpMode): void {
    this.circuit = { ...this.circuit, mode };
  }

  setSetpoint(channel: keyof Setpoints, value: number): void {
    this.circuit = { ...this.circuit, setpoints: { ...this.circuit.setpoints, [channel]: value } };
  }

  setFaults(patch: Partial<CircuitFaults>): void {
    this.circuit = { ...this.circuit, faults: { ...this.circuit.faults, ...patch } };
  }

  /** A sensor reads `!` (fault) or is left out of the frames (absent), or recovers. */
  setSensor(channel: string, mode: 'fault' | 'absent', on: boolean): void {
    const set = mode === 'fault' ? this.faulted : this.absent;
    if (on) set.add(channel);
    else set.delete(channel);
  }

  /** A new rate restarts the full/reduced frame cycle. */
  rateChanged(): void {
    this.samples = 0;
  }

  /**
   * Advances the physics to `nowMs` and reads the sensors for one `T` frame. Above 20 Hz only every
   * ceil(rate/10)-th frame is full; the rest carry FAST_CHANNELS so the line budget holds.
   */
  sample(nowMs: number, rateHz: number): ChannelValues {
    this.circuit = step(this.circuit, nowMs - this.lastStepAt, this.rng);
    this.lastStepAt = nowMs;
    const optional = this.opts.optionalSensors ?? {};
    const all = measure(this.circuit, this.rng, {
      optionalSensors: { PH: optional.PH ?? true, DO: optional.DO ?? true },
      faulted: this.faulted,
      absent: this.absent,
    });
    const full = this.opts.fullFrames === true || rateHz <= 20 || this.samples % Math.ceil(rateHz / 10) === 0;
    this.samples++;
    return full ? all : Object.fromEntries(Object.entries(all).filter(([k]) => FAST_CHANNELS.has(k)));
  }
}
