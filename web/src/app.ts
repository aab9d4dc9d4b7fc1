/** What every screen shares: the live connection, the consoles, the user, alarm rules per console. */
import { api, roleAtLeast, type Role } from './api.js';
import type { AlarmSound } from './audio.js';
import { channelLimits, type Limits, type RuleLike } from './limits.js';
import type { LiveConnection, ReplayMessage } from './live.js';
import type { Console } from './model.js';

export interface View {
  readonly el: HTMLElement;
  /** Called from requestAnimationFrame when something changed, and every 250 ms. */
  update(now: number): void;
  /** Replay messages (`replay: true`) addressed to this view; live ones update the consoles instead. */
  onMessage?(m: ReplayMessage): void;
  destroy(): void;
}

export class AppContext {
  readonly consoles = new Map<string, Console>();
  private readonly rules = new Map<string, RuleLike[] | 'loading'>();
  /** Live samples, for the console view's chart buffer. */
  readonly sampleListeners = new Set<(device: string, t: number, v: Record<string, number | null>) => void>();

  constructor(readonly conn: LiveConnection, readonly user: string, readonly role: string, readonly sound: AlarmSound, readonly requestRender: (urgent?: boolean) => void) {}

  can(role: Role): boolean {
    return roleAtLeast(this.role, role);
  }

  get connected(): boolean {
    return this.conn.state === 'open';
  }

  /** Limits of a console now (rules from GET /api/alarms/profile?device=, loaded once). */
  limits(device: string, values: Record<string, number | null>, state: string | null): Map<string, Limits> {
    if (!device) return new Map();
    const r = this.rules.get(device);
    if (r === undefined) {
      this.rules.set(device, 'loading');
      api<{ rules: RuleLike[] }>(`/api/alarms/profile?device=${encodeURIComponent(device)}`)
        .then((b) => { this.rules.set(device, b.rules); this.requestRender(); })
        .catch(() => this.rules.delete(device));
      return new Map();
    }
    return r === 'loading' ? new Map() : channelLimits(r, values, state);
  }
}
