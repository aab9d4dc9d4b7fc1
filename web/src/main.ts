/**
 * The gateway's browser screens: sign-in with a token, the station overview, one console live, a session's
 * perfusion record, and the engineer's replay. Hash routes: `#/`, `#/console/<id>`,
 * `#/sessions/<id>?device=<device>`, `#/replay[/<id>]`. Only the gateway's
 * public API is used; nothing is fetched from anywhere else.
 */
import 'uplot/dist/uPlot.min.css';
import '../styles/app.css';
import { api, ApiError, roleAtLeast, setToken, token } from './api.js';
import { AppContext, type View } from './app.js';
import { AlarmSound } from './audio.js';
import { ConsoleView } from './consoleView.js';
import { h, setText } from './dom.js';
import { LiveConnection, type ServerMessage } from './live.js';
import { annunciated, applyAlarm, applySample, applySnapshot, newConsole, type Console } from './model.js';
import { OverviewView } from './overview.js';
import { RecordPage } from './recordView.js';
import { ReplayView } from './replayView.js';

const root = document.getElementById('app')!;

function signIn(message = ''): void {
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true, 'aria-describedby': 'signin-msg' });
  const msg = h('p', { id: 'signin-msg', class: 'signin-msg', role: 'alert' }, message);
  const form = h('form', { class: 'signin', onsubmit: async (ev: Event) => {
    ev.preventDefault();
    try {
      await api('/api/me', { tokenOverride: input.value.trim() });
      setToken(input.value.trim());
      void boot();
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.status === 401 ? 'Unknown token.' : `Cannot sign in: ${(err as Error).message}`;
    }
  } },
  h('h1', {}, 'MSC gateway'), h('label', { for: 'token' }, 'Access token'), input,
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in'), msg);
  root.replaceChildren(form);
  input.focus();
}

async function boot(): Promise<void> {
  if (!token()) return signIn();
  let me: { user: string; role: string };
  try {
    me = await api('/api/me');
  } catch (err) {
    setToken(null);
    return signIn(err instanceof ApiError && err.status === 401 ? 'Your token is no longer valid.' : '');
  }
  const conn = new LiveConnection(token);
  const sound = new AlarmSound();
  let dirty = true;
  let frame = 0;
  let timer = 0;
  /**
   * Alarms, states, links and user actions render on the next frame; telemetry alone at most 5 times a second:
   * a numeric changing faster cannot be read, and 16 consoles at 10 Hz would otherwise repaint every frame.
   */
  const requestRender = (urgent = true) => {
    dirty = true;
    if (frame) return;
    if (urgent) {
      if (timer) { clearTimeout(timer); timer = 0; }
      frame = requestAnimationFrame(render);
    } else if (!timer) {
      timer = window.setTimeout(() => { timer = 0; if (!frame) frame = requestAnimationFrame(render); }, 200);
    }
  };
  const app = new AppContext(conn, me.user, me.role, sound, requestRender);
  let view: View | null = null;

  const connEl = h('span', { class: 'conn', 'data-state': 'connecting', role: 'status' }, 'connecting…');
  const soundBtn = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false', 'data-action': 'sound', onclick: () => {
    sound.enable(!sound.enabled);
    soundBtn.setAttribute('aria-pressed', String(sound.enabled));
    soundBtn.textContent = sound.enabled ? 'Sound on' : 'Sound off';
  } }, 'Sound off');
  const nav = h('nav', { 'aria-label': 'Screens' }, h('a', { href: '#/', class: 'nav-link' }, 'Overview'),
    roleAtLeast(me.role, 'engineer') ? h('a', { href: '#/replay', class: 'nav-link' }, 'Replay') : null);
  const header = h('header', { class: 'top' }, h('span', { class: 'brand' }, 'MSC gateway'), nav, connEl, h('span', { class: 'grow' }),
    soundBtn, h('span', { class: 'who' }, `${me.user} · ${me.role}`),
    h('button', { type: 'button', class: 'btn', onclick: () => { conn.stop(); setToken(null); signIn(); } }, 'Sign out'));
  const outlet = h('div', { class: 'outlet' });
  root.replaceChildren(header, outlet);

  const consoleOf = (id: string): Console => {
    let c = app.consoles.get(id);
    if (!c) app.consoles.set(id, (c = newConsole(id)));
    return c;
  };
  const sessionStart = (c: Console) => {
    if (!c.sessionId) { c.sessionFrom = null; return; }
    api<{ sessions: Array<{ sessionId: string; from: number }> }>(`/api/devices/${encodeURIComponent(c.id)}/sessions`).then((r) => {
      c.sessionFrom = r.sessions.filter((s) => s.sessionId === c.sessionId).pop()?.from ?? null;
      requestRender();
    }, () => {});
  };

  conn.onState = (s) => {
    connEl.dataset.state = s;
    setText(connEl, s === 'open' ? 'connected' : s === 'unauthorized' ? 'SIGNED OUT' : 'DISCONNECTED');
    if (s === 'unauthorized') { setToken(null); signIn('The gateway closed the session (token revoked?).'); }
    requestRender();
  };
  conn.onMessage = (m: ServerMessage) => {
    // Replayed data goes to the replay screen only: it must never update a live console. Every replay message
    // carries `replay: true` (replay.ts), live ones never do.
    if ('replay' in m) { view?.onMessage?.(m); return; }
    switch (m.type) {
      case 'snapshot':
        for (const d of m.devices) { const c = consoleOf(d.id); applySnapshot(c, d); sessionStart(c); }
        break;
      case 'telemetry': {
        const c = consoleOf(m.device);
        applySample(c, m.t, m.v, performance.now(), m.late);
        for (const fn of app.sampleListeners) fn(m.device, m.t, m.v);
        requestRender(false);
        return;
      }
      case 'state': {
        const c = consoleOf(m.device);
        const newSession = c.sessionId !== m.sessionId;
        c.state = m.state; c.stateSince = m.t; c.sessionId = m.sessionId;
        if (newSession) sessionStart(c);
        break;
      }
      case 'link': consoleOf(m.device).link = m.link; break;
      case 'alarm': applyAlarm(consoleOf(m.alarm.device), m.alarm); break;
      case 'audioPause': consoleOf(m.device).audioPausedUntil = m.until; break;
      default: return;
    }
    requestRender();
  };
  conn.whenWelcomed(() => conn.send({ type: 'subscribe', devices: '*' }));
  conn.start();

  function route(): void {
    view?.destroy();
    const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
    const [, page, id] = path.split('/');
    if (page === 'console' && id) view = new ConsoleView(app, decodeURIComponent(id));
    else if (page === 'sessions' && id) view = new RecordPage(app, decodeURIComponent(id), new URLSearchParams(query).get('device'));
    else if (page === 'replay' && roleAtLeast(me.role, 'engineer')) view = new ReplayView(app);
    else view = new OverviewView(app);
    document.body.dataset.page = page || 'overview';
    outlet.replaceChildren(view.el);
    requestRender();
  }
  window.addEventListener('hashchange', route);
  route();

  function render(): void {
    frame = 0;
    if (!dirty || !view) return;
    dirty = false;
    view.update(performance.now());
  }
  // Clocks, elapsed times and "no data for 2 s" advance without messages; the sound follows the alarms.
  setInterval(() => {
    requestRender(false);
    const now = Date.now();
    let worst: string | null = null;
    for (const c of app.consoles.values()) {
      if (c.audioPausedUntil && c.audioPausedUntil > now) continue;
      const a = annunciated(c).find((x) => x.state === 'UNACK');
      if (a && (worst === null || ['LOW', 'MEDIUM', 'HIGH'].indexOf(a.priority) > ['LOW', 'MEDIUM', 'HIGH'].indexOf(worst))) worst = a.priority;
    }
    sound.update(worst, now);
  }, 250);
}

void boot();
