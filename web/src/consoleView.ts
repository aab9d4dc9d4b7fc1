/**
 * One console, live: state, session and elapsed time, the alarm bar with the operator's actions,
 * large numerics, trends, the control panel (operator), annotations, the session's alarm history, and the
 * console's sessions with a link to each one's perfusion record.
 * Stale data can never look live: no sample for 2 s greys everything and says NO DATA with the time since
 * the last sample; a lost WebSocket says DISCONNECTED (the connection reconnects by itself).
 */
import { AlarmBar, historyTable } from './alarmBar.js';
import { api, ApiError } from './api.js';
import type { AppContext, View } from './app.js';
import { TRENDS } from './channels.js';
import { annotate, ControlPanel } from './controls.js';
import { modal, outcome, select, textInput } from './dialogs.js';
import { dateTime, duration, h, setAttr, setText, toggle } from './dom.js';
import { delayedAge, deviceNow, isStale, newConsole, type Alarm, type Console } from './model.js';
import { NumericsPanel } from './numerics.js';
import { recordHref } from './recordView.js';
import { TrendBuffer, TrendCharts } from './trends.js';

export class ConsoleView implements View {
  readonly el: HTMLElement;
  private readonly numerics = new NumericsPanel({ replay: false });
  private readonly buffer = new TrendBuffer();
  private readonly trends: TrendCharts;
  private readonly alarms: AlarmBar;
  private readonly state = h('span', { class: 'cv-state' });
  private readonly session = h('span', { class: 'cv-session' });
  private readonly elapsed = h('span', { class: 'cv-elapsed' });
  private readonly link = h('span', { class: 'cv-link' });
  private readonly status = h('div', { class: 'data-status', role: 'status', 'aria-live': 'assertive' });
  private readonly note = h('p', { class: 'cmd-result', role: 'status' });
  private readonly history = h('div', { class: 'history-box' });
  private readonly sessions = h('div', { class: 'sessions-box' });
  private readonly onSample = (device: string, t: number, v: Record<string, number | null>) => {
    if (device === this.id) this.buffer.push(t, v);
  };
  private historyFor: string | null = null;

  constructor(private readonly app: AppContext, private readonly id: string) {
    const operator = app.can('operator');
    this.alarms = new AlarmBar({
      actions: operator ? { ack: (a) => void this.ack(a), shelve: (a) => void this.shelve(a), audioPause: () => void this.audioPause() } : null,
    });
    this.trends = new TrendCharts(this.buffer, { replay: false });
    const historyDetails = h('details', { class: 'panel', ontoggle: () => void this.loadHistory(true) }, h('summary', {}, 'Alarm history of the session'), this.history);
    const sessionsDetails = h('details', { class: 'panel', 'data-panel': 'sessions', ontoggle: (ev: Event) => { if ((ev.target as HTMLDetailsElement).open) void this.loadSessions(); } },
      h('summary', {}, 'Sessions and their records'), this.sessions);
    this.el = h('main', { class: 'console-view', 'data-device': id },
      h('header', { class: 'cv-head' },
        h('a', { href: '#/', class: 'btn back' }, '← Overview'),
        h('h1', { class: 'cv-id' }, id), this.state, this.session, this.elapsed, this.link,
        operator ? h('button', { type: 'button', class: 'btn', 'data-action': 'annotate', onclick: () => void annotate(id, this.note) }, 'Mark event') : null),
      this.status, this.note, this.alarms.el,
      h('div', { class: 'cv-main' }, this.numerics.el, this.trends.el),
      operator ? h('details', { class: 'panel', open: true }, h('summary', {}, 'Control panel'), new ControlPanel(() => this.console()).el) : null,
      historyDetails, sessionsDetails);
    app.sampleListeners.add(this.onSample);
    void this.prefill();
  }

  private console(): Console {
    return this.app.consoles.get(this.id) ?? newConsole(this.id);
  }

  /** The chart starts with the last hour from history, then live samples extend it. */
  private async prefill(): Promise<void> {
    const to = Date.now();
    const keys = [...new Set(TRENDS.flatMap((c) => (c.setpoint ? [c.key, c.setpoint] : [c.key])))].join(',');
    try {
      const r = await api<{ samples: Array<{ t: number; v: Record<string, number | null> }> }>(
        `/api/devices/${encodeURIComponent(this.id)}/telemetry?from=${to - 60 * 60_000}&to=${to}&channels=${keys}&every=1s`);
      this.buffer.prefill(r.samples);
      this.app.requestRender();
    } catch { /* history unavailable: the chart fills from live samples */ }
  }

  update(now: number): void {
    const c = this.console();
    const connected = this.app.connected;
    const stale = isStale(c, now, connected);
    toggle(this.el, 'stale', stale);
    setText(this.state, c.state ?? 'state unknown');
    setAttr(this.state, 'data-state', c.state ?? '');
    setText(this.session, c.sessionId ? `Session ${c.sessionId}` : 'No session');
    const dn = deviceNow(c, now);
    setText(this.elapsed, c.sessionId && c.sessionFrom !== null && dn !== null ? `elapsed ${duration(dn - c.sessionFrom)}` : '');
    setText(this.link, c.link === 'connected' ? 'link ok' : 'LINK LOST');
    toggle(this.link, 'bad', c.link !== 'connected');
    const delayed = delayedAge(c, now, connected);
    toggle(this.el, 'delayed', delayed !== null);
    const text = !connected ? 'DISCONNECTED — reconnecting…'
      : stale ? `NO DATA — ${c.rxAt === null ? 'no sample received' : `last sample ${Math.floor((now - c.rxAt) / 1000)} s ago`}`
        : delayed !== null ? `DELAYED — values are ${Math.floor(delayed / 1000)} s old` : '';
    setText(this.status, text);
    setAttr(this.status, 'data-kind', !connected ? 'disconnected' : stale ? 'nodata' : delayed !== null ? 'delayed' : 'live');
    const limits = this.app.limits(this.id, c.values, c.state);
    this.numerics.update(c.values, limits);
    this.alarms.update(c, Date.now());
    this.trends.setLimits(limits);
    this.trends.render(dn ?? Date.now(), now);
    if (c.sessionId !== this.historyFor) void this.loadHistory(false);
  }

  private async loadHistory(force: boolean): Promise<void> {
    const c = this.console();
    if (!force && this.historyFor === c.sessionId) return;
    this.historyFor = c.sessionId;
    if (!(this.history.closest('details') as HTMLDetailsElement | null)?.open) return;
    const q = c.sessionId ? `session=${encodeURIComponent(c.sessionId)}` : `from=${Date.now() - 3600_000}`;
    try {
      const r = await api(`/api/devices/${encodeURIComponent(this.id)}/alarm-history?${q}&limit=200`);
      this.history.replaceChildren(historyTable(r.transitions));
    } catch (err) {
      this.history.replaceChildren(h('p', { class: 'muted' }, `Alarm history unavailable: ${(err as Error).message}`));
    }
  }

  /** The console's sessions, newest first (GET /api/sessions?device=), each linking to its perfusion record. */
  private async loadSessions(): Promise<void> {
    type Row = { key: number; sessionId: string; device: string; startedAt: number; endedAt: number | null; endReason: string | null; participant: string | null; running: boolean };
    this.sessions.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await api<{ sessions: Row[] }>(`/api/sessions?device=${encodeURIComponent(this.id)}&limit=200`);
      const rows = r.sessions.slice().sort((a, b) => b.startedAt - a.startedAt);
      this.sessions.replaceChildren(rows.length === 0 ? h('p', { class: 'muted' }, 'No sessions recorded on this console.')
        : h('table', { class: 'history sessions' },
          h('thead', {}, h('tr', {}, ...['Session', 'Started', 'Ended', 'Participant', 'Record'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, ...rows.map((s) => h('tr', { 'data-session': s.sessionId, 'data-key': String(s.key) },
            h('td', {}, s.sessionId), h('td', {}, dateTime(s.startedAt)),
            h('td', {}, s.endedAt === null ? h('strong', {}, 'running') : `${dateTime(s.endedAt)}${s.endReason && s.endReason !== 'ENDED' ? ` (${s.endReason})` : ''}`),
            h('td', {}, s.participant ?? '—'),
            h('td', {}, h('a', { href: recordHref(s.sessionId, s.device), 'data-action': 'record' }, 'Record')))))));
    } catch (err) {
      this.sessions.replaceChildren(h('p', { class: 'muted' }, `Sessions unavailable: ${(err as Error).message}`));
    }
  }

  private async ack(a: Alarm): Promise<void> {
    try {
      await api(`/api/alarms/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: {} });
      outcome(this.note, 'ok', `Acknowledged: ${a.message}`);
    } catch (err) {
      outcome(this.note, 'err', `Not acknowledged: ${(err as ApiError).message}`);
    }
  }

  private async shelve(a: Alarm): Promise<void> {
    const minutes = select('minutes', [['15', '15 min'], ['30', '30 min'], ['60', '1 h'], ['240', '4 h'], ['480', '8 h']]);
    const reason = textInput('reason', { required: true, maxlength: 500 });
    const ok = await modal(`Shelve ${a.priority} alarm?`, [h('p', {}, a.message)],
      [{ name: 'minutes', label: 'For', input: minutes }, { name: 'reason', label: 'Reason (required)', input: reason }], 'Shelve');
    if (!ok) return;
    try {
      await api(`/api/alarms/${encodeURIComponent(a.id)}/shelve`, { method: 'POST', body: { minutes: Number(ok.minutes), reason: ok.reason } });
      outcome(this.note, 'ok', `Shelved for ${ok.minutes} min: ${a.message}`);
    } catch (err) {
      outcome(this.note, 'err', `Not shelved: ${(err as ApiError).message}`);
    }
  }

  private async audioPause(): Promise<void> {
    try {
      await api(`/api/devices/${encodeURIComponent(this.id)}/audio-pause`, { method: 'POST', body: {} });
      outcome(this.note, 'ok', 'Audio paused for 2 min.');
    } catch (err) {
      outcome(this.note, 'err', `Audio pause refused: ${(err as ApiError).message}`);
    }
  }

  destroy(): void {
    this.app.sampleListeners.delete(this.onSample);
    this.trends.destroy();
  }
}
