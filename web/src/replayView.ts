/**
 * The engineer's replay screen: choose a console and a session (or a time range), play, pause,
 * 1× / 10× / 60× / as fast as possible, seek on a timeline that marks state changes, alarms and annotations.
 * The same numerics, charts and alarm bar as live, labelled REPLAY everywhere (banner, panels, striped
 * frame), and fed only by messages flagged `replay: true`: live data never enters this screen, nor replayed
 * data the live ones.
 */
import { AlarmBar } from './alarmBar.js';
import { api, download } from './api.js';
import type { AppContext, View } from './app.js';
import { outcome } from './dialogs.js';
import { clock, dateTime, h, setText } from './dom.js';
import type { ClientMessage, ReplayMessage } from './live.js';
import { applySample, newConsole, type Console } from './model.js';
import { NumericsPanel } from './numerics.js';
import { recordHref } from './recordView.js';
import { TrendBuffer, TrendCharts } from './trends.js';

type Markers = Extract<ReplayMessage, { type: 'replayMarkers' }>;
const SPEEDS: Array<[string, number | 'max']> = [['1×', 1], ['10×', 10], ['60×', 60], ['max', 'max']];

export class ReplayView implements View {
  readonly el: HTMLElement;
  private readonly device = h('select', { name: 'device', 'aria-label': 'Console' });
  private readonly session = h('select', { name: 'session', 'aria-label': 'Session' });
  /** The chosen session's perfusion record. */
  private readonly recordLink = h('a', { class: 'btn', 'data-action': 'record', hidden: true }, 'Record');
  private readonly from = h('input', { type: 'datetime-local', name: 'from', step: 1, 'aria-label': 'From' });
  private readonly to = h('input', { type: 'datetime-local', name: 'to', step: 1, 'aria-label': 'To' });
  private readonly speedBtns: HTMLButtonElement[];
  private readonly playBtn: HTMLButtonElement;
  private readonly pos = h('span', { class: 'rp-pos', 'aria-live': 'off' }, '--:--:--');
  private readonly statusEl = h('span', { class: 'rp-status', role: 'status' });
  private readonly note = h('p', { class: 'cmd-result', role: 'status' });
  private readonly timeline = h('div', { class: 'timeline', 'aria-hidden': 'true' });
  private readonly head = h('div', { class: 'playhead' });
  private readonly seekInput = h('input', { type: 'range', min: 0, max: 1000, value: 0, class: 'seek', 'aria-label': 'Seek' });
  private readonly numerics = new NumericsPanel({ replay: true });
  private readonly buffer = new TrendBuffer();
  private readonly trends: TrendCharts;
  private readonly alarmBar = new AlarmBar({ actions: null, replay: true });
  private model: Console = newConsole('');
  private range: { from: number; to: number } | null = null;
  private markers: Markers | null = null;
  private position: number | null = null;
  private speed: number | 'max' = 10;
  private running = false;
  private paused = false;
  /** A replay lives in the server's connection: after a reconnect it is asked for again from the playhead. */
  private readonly unwelcome: () => void;
  private resumePaused = false;
  private resuming = false;

  constructor(private readonly app: AppContext) {
    this.trends = new TrendCharts(this.buffer, { replay: true });
    this.speedBtns = SPEEDS.map(([label, s]) => h('button', {
      type: 'button', class: 'btn', 'data-speed': String(s), 'aria-pressed': String(s === this.speed), onclick: () => this.setSpeed(s),
    }, label));
    this.playBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'play', onclick: () => this.playPause() }, 'Play');
    this.device.addEventListener('change', () => void this.loadSessions());
    this.session.addEventListener('change', () => this.updateRecordLink());
    this.unwelcome = this.app.conn.whenWelcomed(() => this.reconnected());
    this.seekInput.addEventListener('change', () => this.seekFraction(Number(this.seekInput.value) / 1000));
    this.timeline.addEventListener('click', (ev) => {
      const r = this.timeline.getBoundingClientRect();
      this.seekFraction((ev.clientX - r.left) / r.width);
    });
    this.timeline.append(this.head);
    const form = h('form', { class: 'rp-choose', onsubmit: (ev: Event) => { ev.preventDefault(); this.start(); } },
      h('label', { class: 'field' }, h('span', {}, 'Console'), this.device),
      h('label', { class: 'field' }, h('span', {}, 'Session'), this.session), this.recordLink,
      h('span', { class: 'muted' }, 'or'),
      h('label', { class: 'field' }, h('span', {}, 'From'), this.from),
      h('label', { class: 'field' }, h('span', {}, 'To'), this.to),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'load' }, 'Load replay'));
    this.el = h('main', { class: 'replay-view' },
      h('div', { class: 'replay-banner', role: 'note' }, 'REPLAY — recorded data, not live'),
      h('h1', { class: 'sr-only' }, 'Replay'), form,
      h('div', { class: 'rp-transport' }, this.playBtn, h('div', { class: 'speeds', role: 'group', 'aria-label': 'Speed' }, ...this.speedBtns),
        h('span', { class: 'rp-label' }, 'REPLAY'), this.pos, this.statusEl,
        h('button', { type: 'button', class: 'btn', 'data-action': 'csv-range', onclick: () => void this.csv('range') }, 'CSV: whole range'),
        h('button', { type: 'button', class: 'btn', 'data-action': 'csv-window', onclick: () => void this.csv('window') }, 'CSV: chart window')),
      h('div', { class: 'timeline-wrap' }, this.timeline, this.seekInput, h('div', { class: 'legend muted' }, 'Timeline: state (colour band) · alarms ▲ · annotations ◆ — click or use the slider to seek')),
      this.note, this.alarmBar.el, h('div', { class: 'cv-main' }, this.numerics.el, this.trends.el));
    void this.loadDevices();
  }

  private async loadDevices(): Promise<void> {
    const r = await api<{ devices: Array<{ id: string }> }>('/api/devices');
    this.device.replaceChildren(...r.devices.map((d) => h('option', { value: d.id }, d.id)));
    const wanted = decodeURIComponent(location.hash.split('/')[2] ?? '');
    if (wanted) this.device.value = wanted;
    await this.loadSessions();
  }

  private async loadSessions(): Promise<void> {
    const id = this.device.value;
    if (!id) return;
    const r = await api<{ sessions: Array<{ sessionId: string; from: number; to: number | null }> }>(`/api/devices/${encodeURIComponent(id)}/sessions`);
    this.session.replaceChildren(h('option', { value: '' }, '— time range below —'),
      ...r.sessions.slice().reverse().map((s) => h('option', { value: s.sessionId }, `${s.sessionId} · ${dateTime(s.from)}${s.to ? '' : ' (running)'}`)));
    if (r.sessions.length > 0) this.session.value = r.sessions[r.sessions.length - 1].sessionId;
    this.updateRecordLink();
  }

  private updateRecordLink(): void {
    const sid = this.session.value;
    this.recordLink.hidden = !sid;
    if (sid) this.recordLink.href = recordHref(sid, this.device.value);
  }

  private start(): void {
    const device = this.device.value;
    if (!device) return outcome(this.note, 'err', 'Choose a console.');
    const msg: Extract<ClientMessage, { type: 'replay' }> = { type: 'replay', device, speed: this.speed };
    if (this.session.value) msg.session = this.session.value;
    else {
      const f = Date.parse(this.from.value);
      const t = Date.parse(this.to.value);
      if (!Number.isFinite(f) || !Number.isFinite(t) || f >= t) return outcome(this.note, 'err', 'Choose a session, or a time range with From before To.');
      msg.from = f;
      msg.to = t;
    }
    this.resuming = false;
    this.resumePaused = false;
    this.model = newConsole(device);
    this.buffer.clear();
    this.markers = null;
    this.renderTimeline();
    if (!this.app.conn.send(msg)) outcome(this.note, 'err', 'Not connected: the replay starts when the connection is back.');
  }

  /** The connection is back (the server forgot the replay with the old one): carry on from the playhead. */
  private reconnected(): void {
    if (!this.running || !this.range || this.position === null) return;
    this.resumePaused = this.paused;
    this.resuming = true;
    this.buffer.clear();
    const from = Math.min(Math.max(this.position, this.range.from), this.range.to - 1);
    this.app.conn.send({ type: 'replay', device: this.device.value, from, to: this.range.to, speed: this.speed });
    outcome(this.note, 'ok', `Connection back: replay resumed from ${dateTime(from)}.`);
  }

  onMessage(m: ReplayMessage): void {
    // Never a live message here, whatever the caller: live data must not enter the replay screen.
    if (m.replay !== true) return;
    if (m.type === 'telemetry') {
      const rx = performance.now();
      for (const s of m.samples) {
        applySample(this.model, s.t, s.v, rx);
        this.buffer.push(s.t, s.v);
      }
      this.position = m.position;
      this.app.requestRender(false);
      return;
    } else if (m.type === 'replayMarkers') {
      this.markers = m;
      this.renderTimeline();
    } else if (m.status === 'started') {
      const resumed = this.resuming;
      this.resuming = false;
      // A resumed replay keeps the session's range (and its markers); the server's is the rest of it.
      if (!resumed) this.range = { from: m.from, to: m.to };
      this.position = m.from;
      this.running = true;
      this.paused = false;
      this.model.state = null;
      if (this.resumePaused) this.app.conn.send({ type: 'replay', action: 'pause' });
      this.resumePaused = false;
      if (!resumed) outcome(this.note, 'ok', `Replaying ${m.session ?? 'range'} of ${this.device.value} from ${m.source}.`);
    } else if (m.status === 'error') {
      outcome(this.note, 'err', `Replay: ${m.message}`);
    } else {
      this.position = m.position;
      if (m.status === 'ended' || m.status === 'stopped') this.running = false;
      if (m.status === 'paused') this.paused = true;
      if (m.status === 'resumed') this.paused = false;
      if (m.status === 'seeked') this.buffer.clear();
    }
    this.app.requestRender();
  }

  /** Alarm states and console state at the playhead, rebuilt from the markers (transitions up to then). */
  private stateAt(t: number): void {
    if (!this.markers) return;
    let state: string | null = null;
    for (const s of this.markers.states) if (s.t <= t) state = s.state;
    this.model.state = state;
    this.model.alarms.clear();
    for (const a of this.markers.alarms) {
      if (a.t > t) break;
      if (a.state === 'NORMAL') this.model.alarms.delete(a.id);
      else this.model.alarms.set(a.id, { id: a.id, rule: a.rule, priority: a.priority, state: a.state, message: a.message, device: this.model.id, active: a.kind !== 'clear', raisedAt: a.t, clearedAt: null, value: null, limit: null, ackedBy: null, shelvedUntil: null, sessionId: null, latching: false });
    }
  }

  update(now: number): void {
    const c = this.model;
    setText(this.statusEl, !this.running ? (this.range ? 'ended' : 'choose a console and a session') : this.paused ? 'PAUSED' : `playing ${this.speed === 'max' ? 'as fast as possible' : this.speed + '×'}`);
    setText(this.playBtn, this.running && !this.paused ? 'Pause' : 'Play');
    if (this.position !== null) {
      setText(this.pos, `${dateTime(this.position)}`);
      this.stateAt(this.position);
      if (this.range) {
        const f = (this.position - this.range.from) / Math.max(1, this.range.to - this.range.from);
        this.head.style.left = `${Math.min(100, Math.max(0, f * 100))}%`;
        if (document.activeElement !== this.seekInput) this.seekInput.value = String(Math.round(f * 1000));
      }
    }
    const limits = this.app.limits(c.id, c.values, c.state);
    this.numerics.update(c.values, limits);
    this.alarmBar.update(c, now);
    this.trends.setLimits(limits);
    this.trends.render(this.position, now, this.range?.from);
  }

  private playPause(): void {
    if (!this.running) return this.start();
    this.app.conn.send({ type: 'replay', action: this.paused ? 'resume' : 'pause' });
  }

  private setSpeed(s: number | 'max'): void {
    this.speed = s;
    for (const b of this.speedBtns) b.setAttribute('aria-pressed', String(b.dataset.speed === String(s)));
    if (this.running) this.app.conn.send({ type: 'replay', action: 'speed', speed: s });
  }

  private seekFraction(f: number): void {
    if (!this.range) return;
    const t = Math.round(this.range.from + Math.min(1, Math.max(0, f)) * (this.range.to - this.range.from));
    if (!this.running) {
      this.app.conn.send({ type: 'replay', device: this.device.value, from: t, to: this.range.to, speed: this.speed });
      return;
    }
    this.buffer.clear();
    this.app.conn.send({ type: 'replay', action: 'seek', t });
  }

  private renderTimeline(): void {
    this.timeline.replaceChildren(this.head);
    const m = this.markers;
    if (!m || !this.range) return;
    const { from, to } = this.range;
    const x = (t: number) => `${(Math.min(Math.max(t, from), to) - from) / Math.max(1, to - from) * 100}%`;
    m.states.forEach((s, i) => {
      const end = m.states[i + 1]?.t ?? to;
      const seg = h('div', { class: 'tl-state', 'data-state': s.state, title: `${s.state} ${clock(s.t)}` });
      seg.style.left = x(s.t);
      seg.style.width = `calc(${x(end)} - ${x(s.t)})`;
      this.timeline.append(seg);
    });
    for (const a of m.alarms.filter((a) => a.kind === 'raise' || a.kind === 'escalate')) {
      const mk = h('div', { class: 'tl-alarm', 'data-priority': a.priority, title: `${a.priority} ${a.message} ${clock(a.t)}` }, '▲');
      mk.style.left = x(a.t);
      this.timeline.append(mk);
    }
    for (const a of m.annotations) {
      const mk = h('div', { class: 'tl-note', title: `${a.kind}: ${a.text} (${a.user}) ${clock(a.t)}` }, '◆');
      mk.style.left = x(a.t);
      this.timeline.append(mk);
    }
  }

  private async csv(which: 'range' | 'window'): Promise<void> {
    if (!this.range) return outcome(this.note, 'err', 'Load a replay first.');
    const end = which === 'window' ? (this.position ?? this.range.to) : this.range.to;
    const start = which === 'window' ? end - this.trends.windowMin * 60_000 : this.range.from;
    try {
      await download(`/api/devices/${encodeURIComponent(this.device.value)}/telemetry.csv?from=${Math.floor(start)}&to=${Math.ceil(end) + 1}`, 'replay.csv');
    } catch (err) {
      outcome(this.note, 'err', `CSV export failed: ${(err as Error).message}`);
    }
  }

  destroy(): void {
    this.unwelcome();
    if (this.running) this.app.conn.send({ type: 'replay', action: 'stop' });
    this.trends.destroy();
  }
}
