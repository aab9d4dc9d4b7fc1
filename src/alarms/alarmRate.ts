/**
 * Alarm rate per device (ISA-18.2 / IEC 62682 performance metrics): alarms raised within a sliding window
 * (10 min by default) and the flood flag (more than 10 in the window), for `/metrics`.
 */
import { gauge, type Labels, type Registry } from '../metrics.js';
import type { AlarmInstance } from './types.js';

export class AlarmRate {
  private readonly raises = new Map<string, number[]>();

  constructor(private readonly cfg: { windowS: number; threshold: number }) {}

  record(deviceId: string, at: number): void {
    const list = this.raises.get(deviceId);
    if (list) list.push(at);
    else this.raises.set(deviceId, [at]);
  }

  forget(deviceId: string): void {
    this.raises.delete(deviceId);
  }

  devices(): Iterable<string> {
    return this.raises.keys();
  }

  count(deviceId: string, now: number): number {
    const list = this.raises.get(deviceId);
    if (!list) return 0;
    const from = now - this.cfg.windowS * 1000;
    let drop = 0;
    while (drop < list.length && list[drop] < from) drop++;
    if (drop > 0) list.splice(0, drop);
    return list.length;
  }

  /**
   * `msc_alarms_10min` and `msc_alarm_flood` per device (every device given and every device with raises), and
   * `msc_alarms_active` by device, priority and state for the instances not NORMAL.
   */
  registerMetrics(registry: Registry, from: {
    devices: () => Iterable<string>;
    instances: () => Iterable<{ alarm: AlarmInstance }>;
    now: () => number;
  }): void {
    const { windowS, threshold } = this.cfg;
    const counts = () => {
      const now = from.now();
      return [...new Set([...from.devices(), ...this.raises.keys()])].sort().map((device) => [device, this.count(device, now)] as const);
    };
    gauge(registry, {
      name: 'msc_alarms_10min', help: `Alarms raised in the last ${windowS} s, per device (ISA-18.2 alarm rate).`, labelNames: ['device'],
      read: () => counts().map(([device, n]) => [{ device }, n] as const),
    });
    gauge(registry, {
      name: 'msc_alarm_flood', help: `1 while more than ${threshold} alarms were raised in ${windowS} s (ISA-18.2 flood).`, labelNames: ['device'],
      read: () => counts().map(([device, n]) => [{ device }, n > threshold ? 1 : 0] as const),
    });
    gauge(registry, {
      name: 'msc_alarms_active', help: 'Alarm instances not NORMAL, by device, priority and state.', labelNames: ['device', 'priority', 'state'],
      read: () => {
        const active = new Map<string, { labels: Labels; n: number }>();
        for (const { alarm: a } of from.instances()) {
          if (a.state === 'NORMAL') continue;
          const key = JSON.stringify([a.device, a.priority, a.state]);
          const e = active.get(key);
          if (e) e.n += 1;
          else active.set(key, { labels: { device: a.device, priority: a.priority, state: a.state }, n: 1 });
        }
        return [...active].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => [e.labels, e.n] as const);
      },
    });
  }
}
