/**
 * Alarm rate per device (ISA-18.2 / IEC 62682 performance metrics): alarms raised within a sliding window
 * (10 min by default) and the flood flag (more than 10 in the window), as Prometheus text for `/metrics`.
 */
import type { AlarmInstance } from './types.js';

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

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

  metricsText(devices: string[], instances: Iterable<{ alarm: AlarmInstance }>, now: number): string {
    const { windowS, threshold } = this.cfg;
    const ids = [...devices].sort();
    const counts = ids.map((id) => this.count(id, now));
    const lines = [
      `# HELP msc_alarms_10min Alarms raised in the last ${windowS} s, per device (ISA-18.2 alarm rate).`,
      '# TYPE msc_alarms_10min gauge',
      ...ids.map((id, i) => `msc_alarms_10min{device="${esc(id)}"} ${counts[i]}`),
      `# HELP msc_alarm_flood 1 while more than ${threshold} alarms were raised in ${windowS} s (ISA-18.2 flood).`,
      '# TYPE msc_alarm_flood gauge',
      ...ids.map((id, i) => `msc_alarm_flood{device="${esc(id)}"} ${counts[i] > threshold ? 1 : 0}`),
      '# HELP msc_alarms_active Alarm instances not NORMAL, by device, priority and state.',
      '# TYPE msc_alarms_active gauge',
    ];
    const active = new Map<string, number>();
    for (const { alarm: a } of instances) {
      if (a.state === 'NORMAL') continue;
      const key = `device="${esc(a.device)}",priority="${a.priority}",state="${a.state}"`;
      active.set(key, (active.get(key) ?? 0) + 1);
    }
    for (const [key, n] of [...active].sort()) lines.push(`msc_alarms_active{${key}} ${n}`);
    return lines.join('\n') + '\n';
  }
}
