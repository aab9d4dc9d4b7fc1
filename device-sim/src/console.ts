/**
 * One simulated MSC-ALS console: identity, session state machine, sequence counter, device clock,
 * telemetry at its rate, keep-alives, its own alarms and the ICD's ACK rules. No I/O: frames leave
 * through onFrame listeners, commands arrive through receive(), time comes from an injected SimClock.
 */
import { checkCommand } from '../../src/protocol/commands.js';
import type { CommandDecode } from '../../src/protocol/serial.js';
import type {
  AckFrame, AckResult, Command, CommandArg, CommandVerb, DevicePriority, EventFrame, HelloFrame, SessionState,
  StateFrame, TelemetryFrame,
} from '../../src/protocol/types.js';
import type { Setpoints } from './circuit.js';
import { CommandMemory } from './commandMemory.js';
import { CircuitInstrument, pumpModeFor } from './instrument.js';
import { DEFAULT_PHASES, DEFAULT_RATE_HZ, KEEPALIVE_MS } from './consoleOptions.js';
import type { ConsoleOptions } from './consoleOptions.js';
import { SimScheduler } from './scheduler.js';

export { DEFAULT_PHASES, DEFAULT_RATE_HZ, KEEPALIVE_MS } from './consoleOptions.js';
export type { ConsoleOptions, PhaseDurations } from './consoleOptions.js';

export type ConsoleFrame = HelloFrame | TelemetryFrame | StateFrame | EventFrame | AckFrame;
export type FrameListener = (frame: ConsoleFrame) => void;

const U32 = 2 ** 32;

type Outcome = { result: 'OK'; detail: ''; cmd: Command } | { result: 'REJ' | 'ERR'; detail: string };

export class SimulatedConsole {
  readonly deviceId: string;
  private readonly listeners = new Set<FrameListener>();
  private readonly scheduler = new SimScheduler();
  private readonly commands = new CommandMemory();
  /** The hardware: pumps, heater, sensors (scenario faults act on it directly). */
  readonly instrument: CircuitInstrument;
  private unsubscribe: (() => void) | null = null;
  private powered = false;
  private advancing = false;
  private now = 0;
  private epochBase = 0;
  private skewMs = 0;
  private sessionState: SessionState = 'IDLE';
  private session: string | null = null;
  private telemetryRate: number;
  private nextSeq = 0;
  private lastSeqSent: number | null = null;
  private nextTelemetryAt = Infinity;
  private nextKeepaliveAt = Infinity;
  private phaseToken = 0;
  private autoRunPending = false;
  private internalFault: { code: string; text: string } | null = null;
  private audioPausedUntil = -Infinity;

  constructor(private readonly opts: ConsoleOptions) {
    this.deviceId = opts.deviceId;
    this.instrument = new CircuitInstrument({
      seed: opts.seed ?? 1, optionalSensors: opts.optionalSensors, fullFrames: opts.fullFrames,
    });
    this.telemetryRate = opts.rate ?? DEFAULT_RATE_HZ;
  }

  get state(): SessionState { return this.sessionState; }
  get sessionId(): string | null { return this.session; }
  get rate(): number { return this.telemetryRate; }
  get isPowered(): boolean { return this.powered; }
  /** Seq of the last T/S/EV produced, null before the first since power-up. */
  get lastSeq(): number | null { return this.lastSeqSent; }
  get setpoints(): Readonly<Setpoints> { return this.instrument.setpoints; }
  /** Simulated time this console has been processed up to, ms since the simulator started. */
  get simNow(): number { return this.now; }
  get audioPaused(): boolean { return this.now < this.audioPausedUntil; }

  /** The device clock (ICD §1 t_ms): epoch ms, skewed by clock_skew, set by SYNC. */
  deviceNow(): number {
    return Math.max(0, Math.round(this.epochBase + this.now + this.skewMs));
  }

  hello(): HelloFrame {
    return {
      type: 'HELLO', deviceId: this.deviceId, model: this.opts.model ?? 'MSC-ALS 2', fw: this.opts.fw ?? '3.4.1',
      icd: 1, serialNo: this.opts.serialNo ?? `SN-${this.deviceId}`,
    };
  }

  onFrame(listener: FrameListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Powers up: HELLO, then S IDLE with seq 0 (ICD §1), then telemetry at the rate. */
  start(): void {
    if (this.unsubscribe) return;
    const clock = this.opts.clock;
    this.now = clock.now();
    this.epochBase = (this.opts.startEpochMs ?? Date.now()) - this.now;
    this.unsubscribe = clock.onTick((t) => this.advanceTo(t));
    this.autoRunPending = this.opts.autoRun !== undefined && this.opts.autoRun !== false;
    this.powerUp(this.opts.seqStart ?? 0);
  }

  /** Safe twice. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.powerOff();
    this.scheduler.clear();
  }

  /** Runs `fn` at simulated time `atMs` (scenario actions, link restores); returns a canceller. */
  schedule(atMs: number, fn: () => void): () => void {
    return this.scheduler.at(atMs, fn);
  }

  /** Processes every timer, keep-alive and telemetry sample due up to simulated time `target`. */
  advanceTo(target: number): void {
    if (this.advancing) return;
    this.advancing = true;
    try {
      for (;;) {
        const tTimer = this.scheduler.nextAt();
        const next = Math.min(tTimer, this.nextKeepaliveAt, this.nextTelemetryAt);
        if (next > target) break;
        this.now = Math.max(this.now, next);
        if (tTimer === next) this.scheduler.runNext(next);
        else if (this.nextKeepaliveAt === next) this.emitState();
        else this.telemetryTick();
      }
      this.now = Math.max(this.now, target);
    } finally {
      this.advancing = false;
    }
  }

  /**
   * A command from the link, already decoded. ICD §1: ACK at once (well within 500 ms), before the
   * frames its effect produces; a cmd_id repeated within 60 s gets the first result and is not
   * executed twice. ICD: silent on a line the device cannot read. Choice: a Discard (bad CRC,
   * garbage) or a command without a readable cmd_id gets no answer, so the sender retries.
   */
  receive(input: CommandDecode): void {
    if (input.type === 'discard') return;
    this.advanceTo(this.opts.clock.now());
    if (!this.powered) return;
    const cmdId = input.type === 'command' ? input.cmd.cmdId : input.cmdId;
    if (cmdId === null) return;
    const wall = this.opts.clock.wallMs();
    const fate = this.commands.fate(cmdId, this.now, wall);
    if (fate.kind === 'lost') return;
    if (fate.kind === 'repeat') {
      this.emit({ type: 'ACK', cmdId, result: fate.result, detail: fate.detail });
      return;
    }
    const outcome: Outcome = input.type === 'command'
      ? this.check(input.cmd)
      : { result: 'ERR', detail: input.detail };
    this.commands.remember(cmdId, this.now, wall, outcome.result, outcome.detail);
    this.emit({ type: 'ACK', cmdId, result: outcome.result, detail: outcome.detail });
    if (outcome.result === 'OK') this.perform(outcome.cmd);
  }

  /** A command keyed on the console's own panel (autoRun, scenario `command`): same rules, no ACK. */
  panel(verb: CommandVerb, args: CommandArg[] = []): { result: AckResult; detail: string } {
    const outcome = this.check({ cmdId: 'PANEL', verb, args });
    if (outcome.result === 'OK') this.perform(outcome.cmd);
    return { result: outcome.result, detail: outcome.detail };
  }

  // ---- Hardware hooks: what a scenario action does to the device (see faults.ts) ----

  /**
   * AIR / BLD detector: EV raised or cleared; raised while RUNNING, the device pauses the pump itself
   * (ICD §1). ICD: names no transition from other states; there the EV is sent and the state kept.
   */
  setDetector(key: 'air' | 'bloodLeak', on: boolean): void {
    this.instrument.setFaults({ [key]: on });
    const [code, text] = key === 'air'
      ? ['AIR_DETECTED', 'Air detected in venous line']
      : ['BLOOD_LEAK', 'Blood leak detected in plasma line'];
    this.raiseEvent(code, 'H', on, text);
    if (on && this.sessionState === 'RUNNING') this.transition('PAUSED');
  }

  /** The device's own alarm or event (`EV`), e.g. HEATER_FAULT. */
  raiseEvent(code: string, prio: DevicePriority, active: boolean, text: string): void {
    if (!this.powered) return;
    this.emit({ type: 'EV', seq: this.takeSeq(), t: this.deviceNow(), code, prio, active, text });
  }

  /** Steps the device clock (clock_skew); SYNC sets it back. */
  skewClock(ms: number): void {
    this.skewMs += ms;
  }

  /** unanswered_command: the next `count` commands and their retries get no ACK and are not executed. */
  loseNextCommands(count: number): void {
    this.commands.loseNext(count);
  }

  /** Power off for `offMs`, then boot: HELLO, seq from 0, IDLE, default setpoints and rate. */
  powerCycle(offMs: number): void {
    this.powerOff();
    this.scheduler.at(this.now + offMs, () => this.powerUp(0));
  }

  /** The telemetry rate changed on the console (RATE or the set_rate action). */
  setRate(hz: number): void {
    this.telemetryRate = hz;
    this.instrument.rateChanged();
    if (this.powered) this.nextTelemetryAt = this.now + 1000 / hz;
  }

  /** An internal fault: EV, then FAULT from any state (ICD §1); RESET clears it. */
  enterFault(code: string, text: string): void {
    this.internalFault = { code, text };
    this.raiseEvent(code, 'H', true, text);
    this.transition('FAULT');
  }

  private check(cmd: Command): Outcome {
    const r = checkCommand(cmd, { state: this.sessionState, setpoints: { ...this.instrument.setpoints } });
    if (!r.ok) return { result: r.code === 'malformed' ? 'ERR' : 'REJ', detail: r.detail };
    const { air, bloodLeak } = this.instrument.faults;
    if (r.cmd.verb === 'RESUME' && (air || bloodLeak)) {
      // ICD: silent on RESUME while the detector still alarms. Safe reading: the pump stays stopped.
      return { result: 'REJ', detail: air ? 'air detected in venous line' : 'blood leak detected' };
    }
    return { result: 'OK', detail: '', cmd: r.cmd };
  }

  private perform(cmd: Command): void {
    const a = cmd.args;
    switch (cmd.verb) {
      case 'ID': this.emit(this.hello()); return;
      case 'SYNC': this.skewMs = Number(a[0]) - (this.epochBase + this.now); return;
      case 'RATE': this.setRate(Number(a[0])); return;
      case 'SET': this.instrument.setSetpoint(String(a[0]) as keyof Setpoints, Number(a[1])); return;
      case 'PRIME': {
        this.transition('SELFTEST');
        const phases = { ...DEFAULT_PHASES, ...this.opts.phases };
        this.afterPhase(phases.selftestMs, () => {
          this.transition('PRIMING');
          this.afterPhase(phases.primingMs, () => this.transition('PRIMED'));
        });
        return;
      }
      case 'START': this.session = String(a[0]); this.transition('RUNNING'); return;
      case 'PAUSE': this.transition('PAUSED'); return;
      case 'RESUME': this.transition('RUNNING'); return;
      case 'RINSEBACK':
        this.transition('RINSEBACK');
        this.afterPhase(this.opts.phases?.rinsebackMs ?? DEFAULT_PHASES.rinsebackMs, () => this.transition('ENDED'));
        return;
      case 'END': this.transition('ENDED'); return;
      case 'RESET':
        if (this.internalFault) this.raiseEvent(this.internalFault.code, 'H', false, this.internalFault.text);
        this.internalFault = null;
        this.transition('IDLE');
        return;
      case 'SILENCE': this.audioPausedUntil = this.now + 120_000; return;
    }
  }

  /** Runs `fn` after `ms` unless the state changed meanwhile (END, FAULT, power cycle). */
  private afterPhase(ms: number, fn: () => void): void {
    const token = this.phaseToken;
    this.scheduler.at(this.now + ms, () => {
      if (token === this.phaseToken) fn();
    });
  }

  private transition(next: SessionState): void {
    if (next === this.sessionState) return;
    this.sessionState = next;
    this.phaseToken++;
    // ICD: a RUNNING or PAUSED session always has a session_id; silent after that. Choice: the id
    // stays through RINSEBACK, ENDED and FAULT (the session they end) and is cleared in IDLE.
    if (next === 'IDLE') this.session = null;
    this.instrument.setMode(pumpModeFor(next));
    this.emitState();
    if (next === 'PRIMED' && this.autoRunPending) {
      this.autoRunPending = false;
      const auto = this.opts.autoRun;
      const sessionId = typeof auto === 'object' && auto.sessionId ? auto.sessionId : this.defaultSessionId();
      this.panel('START', [sessionId]);
    }
  }

  private defaultSessionId(): string {
    const day = new Date(this.deviceNow()).toISOString().slice(0, 10).replaceAll('-', '');
    return `S-${day}-${this.deviceId.replace(/[^A-Za-z0-9-]/g, '')}`.slice(0, 32);
  }

  private powerUp(seqStart: number): void {
    this.powered = true;
    this.nextSeq = seqStart >>> 0;
    this.lastSeqSent = null;
    this.sessionState = 'IDLE';
    this.session = null;
    this.internalFault = null;
    this.telemetryRate = this.opts.rate ?? DEFAULT_RATE_HZ;
    this.commands.forgetAnswers();
    this.instrument.powerUp(this.now);
    this.emit(this.hello());
    this.emitState();
    this.nextTelemetryAt = this.now + 1000 / this.telemetryRate;
    if (this.autoRunPending) this.panel('PRIME');
  }

  private powerOff(): void {
    this.powered = false;
    this.phaseToken++;
    this.nextTelemetryAt = Infinity;
    this.nextKeepaliveAt = Infinity;
  }

  private telemetryTick(): void {
    const v = this.instrument.sample(this.now, this.telemetryRate);
    this.nextTelemetryAt += 1000 / this.telemetryRate;
    this.emit({ type: 'T', seq: this.takeSeq(), t: this.deviceNow(), v });
  }

  private emitState(): void {
    if (!this.powered) return;
    this.nextKeepaliveAt = this.now + KEEPALIVE_MS;
    this.emit({ type: 'S', seq: this.takeSeq(), t: this.deviceNow(), state: this.sessionState, sessionId: this.session });
  }

  private takeSeq(): number {
    const seq = this.nextSeq;
    this.nextSeq = (seq + 1) % U32;
    this.lastSeqSent = seq;
    return seq;
  }

  private emit(frame: ConsoleFrame): void {
    for (const l of [...this.listeners]) l(frame);
  }
}
