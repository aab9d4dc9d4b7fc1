/**
 * The optional audible alarm signal, off until the user turns it on (browsers allow sound only after
 * a user gesture). Patterns after IEC 60601-1-8: HIGH a burst of 10 pulses, MEDIUM 3, LOW 1; repeated while an
 * unacknowledged alarm of that priority exists and the console's audio is not paused.
 */
const PATTERN: Record<string, { pulses: number; hz: number; everyMs: number }> = {
  HIGH: { pulses: 10, hz: 880, everyMs: 6000 },
  MEDIUM: { pulses: 3, hz: 660, everyMs: 12000 },
  LOW: { pulses: 1, hz: 520, everyMs: 20000 },
};

export class AlarmSound {
  private ctx: AudioContext | null = null;
  enabled = false;
  private lastAt = 0;
  private lastPriority: string | null = null;

  enable(on: boolean): void {
    this.enabled = on;
    if (on && !this.ctx) this.ctx = new AudioContext();
  }

  /** Called about once a second with the highest unacknowledged, unpaused priority (or null). */
  update(priority: string | null, now: number): void {
    if (!this.enabled || !this.ctx || !priority) {
      this.lastPriority = null;
      return;
    }
    const p = PATTERN[priority];
    if (priority === this.lastPriority && now - this.lastAt < p.everyMs) return;
    this.lastPriority = priority;
    this.lastAt = now;
    const t0 = this.ctx.currentTime;
    for (let i = 0; i < p.pulses; i++) {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = p.hz;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(this.ctx.destination);
      const start = t0 + i * 0.22 + (i >= 5 ? 0.35 : 0);
      osc.start(start);
      osc.stop(start + 0.15);
    }
  }
}
