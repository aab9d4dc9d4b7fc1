/**
 * The station overview: one tile per console with state, session time, link, the worst active
 * alarm and QB / PV / TMP / TR at a glance. A tile is a link (keyboard: Tab, Enter) to the console view.
 */
import type { AppContext, View } from './app.js';
import { format, GLANCE, info } from './channels.js';
import { duration, h, setAttr, setText, toggle } from './dom.js';
import { outside } from './limits.js';
import { delayedAge, deviceNow, isStale, worstAlarm } from './model.js';

interface Tile {
  root: HTMLAnchorElement; state: HTMLElement; link: HTMLElement; alarm: HTMLElement; session: HTMLElement;
  status: HTMLElement; glance: Map<string, HTMLElement>;
}

export class OverviewView implements View {
  readonly el: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly tiles = new Map<string, Tile>();
  private readonly empty: HTMLElement;

  constructor(private readonly app: AppContext) {
    this.empty = h('p', { class: 'muted' }, 'Waiting for consoles…');
    this.grid = h('div', { class: 'tiles' });
    this.el = h('main', { class: 'overview', 'aria-label': 'Station overview' }, h('h1', { class: 'sr-only' }, 'Station overview'), this.empty, this.grid);
  }

  update(now: number): void {
    const ids = [...this.app.consoles.keys()].sort();
    this.empty.hidden = ids.length > 0;
    for (const id of ids) {
      const c = this.app.consoles.get(id)!;
      const t = this.tiles.get(id) ?? this.makeTile(id, ids.indexOf(id));
      const stale = isStale(c, now, this.app.connected);
      toggle(t.root, 'stale', stale);
      setText(t.state, c.state ?? '—');
      setAttr(t.state, 'data-state', c.state ?? '');
      setText(t.link, c.link === 'connected' ? 'link ok' : 'LINK LOST');
      toggle(t.link, 'bad', c.link !== 'connected');
      const limits = this.app.limits(id, c.values, c.state);
      for (const [k, el] of t.glance) {
        setText(el, format(k, c.values[k]));
        setAttr(el.parentElement!, 'data-out', outside(c.values[k], limits.get(k)) ?? '');
      }
      const worst = worstAlarm(c);
      setAttr(t.alarm, 'data-priority', worst?.priority ?? '');
      setAttr(t.alarm, 'data-state', worst?.state ?? '');
      setText(t.alarm, worst ? `${worst.priority}: ${worst.message}` : 'No active alarm');
      const dn = deviceNow(c, now);
      setText(t.session, c.sessionId ? `${c.sessionId} · ${c.sessionFrom !== null && dn !== null ? duration(dn - c.sessionFrom) : '--:--'}` : 'no session');
      const delayed = delayedAge(c, now, this.app.connected);
      toggle(t.root, 'delayed', delayed !== null);
      setText(t.status, !this.app.connected ? 'DISCONNECTED'
        : stale ? `NO DATA ${c.rxAt === null ? '' : Math.floor((now - c.rxAt) / 1000) + ' s'}`
          : delayed !== null ? `DELAYED ${Math.floor(delayed / 1000)} s` : '');
    }
  }

  private makeTile(id: string, index: number): Tile {
    const glance = new Map<string, HTMLElement>();
    const state = h('span', { class: 'tile-state' });
    const link = h('span', { class: 'tile-link' });
    const alarm = h('div', { class: 'tile-alarm' });
    const session = h('span', { class: 'tile-session' });
    const status = h('span', { class: 'tile-status', 'aria-live': 'polite' });
    const glanceEl = h('div', { class: 'tile-glance' }, ...GLANCE.map((k) => {
      const v = h('span', { class: 'g-value', 'data-channel': k }, '---');
      glance.set(k, v);
      return h('div', { class: 'g' }, h('span', { class: 'g-key' }, k), v, h('span', { class: 'g-unit' }, info(k).unit));
    }));
    const root = h('a', { class: 'tile', href: `#/console/${encodeURIComponent(id)}`, 'data-device': id },
      h('div', { class: 'tile-head' }, h('span', { class: 'tile-id' }, id), state, link), alarm, glanceEl,
      h('div', { class: 'tile-foot' }, session, status));
    const tile: Tile = { root, state, link, alarm, session, status, glance };
    this.tiles.set(id, tile);
    const before = [...this.tiles.keys()].sort().indexOf(id);
    const next = this.grid.children[before] ?? null;
    this.grid.insertBefore(root, index >= 0 ? next : null);
    return tile;
  }

  destroy(): void {}
}
