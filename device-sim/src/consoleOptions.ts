/** Options and timings of a simulated console (see console.ts). */
import type { SimClock } from './clock.js';

export interface PhaseDurations {
  selftestMs: number;
  primingMs: number;
  rinsebackMs: number;
}
/** Compressed from the real ~15 min of priming so a demo or CI run reaches RUNNING in 10 s. */
export const DEFAULT_PHASES: Readonly<PhaseDurations> = { selftestMs: 2_000, primingMs: 8_000, rinsebackMs: 10_000 };
export const KEEPALIVE_MS = 5_000;
export const DEFAULT_RATE_HZ = 10;

export interface ConsoleOptions {
  deviceId: string;
  model?: string;
  fw?: string;
  serialNo?: string;
  clock: SimClock;
  /** Seed of this console's noise stream. */
  seed?: number;
  /** Telemetry rate at power-up, Hz (default 10, ICD §1). */
  rate?: number;
  /** Device clock at start(), epoch ms (default Date.now()). */
  startEpochMs?: number;
  phases?: Partial<PhaseDurations>;
  optionalSensors?: Partial<{ PH: boolean; DO: boolean }>;
  /** PRIME at power-up, then START this session id once PRIMED, so a demo has a RUNNING console. */
  autoRun?: boolean | { sessionId?: string };
  /** First seq after start() (tests of the u32 wrap); a power cycle restarts at 0 as the ICD says. */
  seqStart?: number;
  /** Send every channel in every frame even above 20 Hz (see FAST_CHANNELS). */
  fullFrames?: boolean;
}
