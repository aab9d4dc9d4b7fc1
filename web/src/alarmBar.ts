/**
 * The alarm bar: active alarms ordered by priority, coloured and flashing as IEC 60601-1-8 Table 2
 * asks (HIGH red ~2 Hz, MEDIUM yellow ~0.5 Hz, LOW cyan steady; styles/app.css). Each item also says its
 * priority in words and with !!! / !! / ! so colour is never the only cue. Unacknowledged alarms flash;
 * once acknowledged they stay lit, steady (ISA-18.2 convention), until the condition clears.
 */
import { clock, duration, h, setText } from './dom.js';
import { orderedAlarms, type Alarm, type Console } from './model.js';

const MARK: Record<string, string> = { HIGH: '!!!', MEDIUM: '!!', LOW: '!' };
const STATE_TEXT: Record<string, string> = {
  UNACK: 'unacknowledged', ACKED: 'acknowledged', RTN_UNACK: 'cleared — acknowledge', SHELVED: 'shelved',
  SUPPRESSED: 'suppressed (state)', OUT_OF_SERVICE: 'out of service',
};

export interface AlarmActions {
  ack(a: Alarm): void;
  shelve(a: Alarm): void;
  audioPause(): void;
}

export class AlarmBar {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly paused: HTMLElement;
  private readonly pauseBtn: HTMLButtonElement | null;
  private signature = '';

  constructor(private readonly opts: { actions: AlarmActions | null; replay?: boolean }) {
    this.list = h('ol', { class: 'alarm-list' });
    this.paused = h('span', { class: 'audio-paused', 'aria-live': 'polite' });
    this.pauseBtn = opts.actions
      ? h('button', { type: 'button', class: 'btn', 'data-action': 'audio-pause', onclick: () => opts.actions!.audioPause() }, 'Audio pause 2 min')
      : null;
    this.el = h('section', { class: 'alarm-bar', 'aria-label': 'Alarms' },
      h('div', { class: 'alarm-bar-head' }, h('h2', {}, opts.replay ? 'Alarms — REPLAY' : 'Alarms'), this.paused, this.pauseBtn),
      this.list);
  }

  update(c: Console, now: number): void {
    const alarms = orderedAlarms(c);
    const sig = alarms.map((a) => `${a.id}|${a.state}|${a.priority}|${a.active}|${a.value}`).join(';');
    if (sig !== this.signature) {
      this.signature = sig;
      this.list.replaceChildren(...(alarms.length === 0
        ? [h('li', { class: 'alarm-none' }, 'No active alarms')]
        : alarms.map((a) => this.item(a))));
    }
    const until = c.audioPausedUntil;
    setText(this.paused, until && until > now ? `AUDIO PAUSED ${duration(until - now)}` : '');
  }

  private item(a: Alarm): HTMLElement {
    const act = this.opts.actions;
    const needsAck = a.state === 'UNACK' || a.state === 'RTN_UNACK';
    const detail = a.value !== null && a.limit !== null ? `${a.value} (limit ${a.limit})` : '';
    return h('li', {
      class: 'alarm', 'data-priority': a.priority, 'data-state': a.state, 'data-id': a.id, 'data-rule': a.rule,
      role: a.state === 'UNACK' ? 'alert' : null,
    },
    h('span', { class: 'alarm-prio' }, `${MARK[a.priority] ?? ''} ${a.priority}`),
    h('span', { class: 'alarm-msg' }, a.message),
    h('span', { class: 'alarm-detail' }, detail),
    h('span', { class: 'alarm-state' }, STATE_TEXT[a.state] ?? a.state, a.raisedAt ? ` · since ${clock(a.raisedAt)}` : ''),
    act && needsAck ? h('button', { type: 'button', class: 'btn', 'data-action': 'ack', onclick: () => act.ack(a) }, 'Acknowledge') : null,
    act && a.state !== 'SHELVED' && a.state !== 'OUT_OF_SERVICE' ? h('button', { type: 'button', class: 'btn', 'data-action': 'shelve', onclick: () => act.shelve(a) }, 'Shelve') : null);
  }
}

/** The session's alarm history: transitions newest first (GET /api/devices/:id/alarm-history). */
export function historyTable(transitions: Array<{ at: number; kind: string; to: string; alarm: Alarm; actor: { user: string } | null; reason: string | null }>): HTMLElement {
  if (transitions.length === 0) return h('p', { class: 'muted' }, 'No alarms in this session.');
  return h('table', { class: 'history' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Priority'), h('th', {}, 'Alarm'), h('th', {}, 'Event'), h('th', {}, 'By'))),
    h('tbody', {}, ...transitions.map((t) => h('tr', { 'data-priority': t.alarm.priority },
      h('td', {}, clock(t.at)), h('td', {}, t.alarm.priority), h('td', {}, t.alarm.message),
      h('td', {}, `${t.kind} → ${t.to}`), h('td', {}, t.actor?.user ?? '')))));
}
