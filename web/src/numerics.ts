/**
 * Large numerics with units, setpoints and alarm limits, shared by the live and replay screens.
 * A value outside its limits is marked by a frame and an arrow + word (never by colour alone); a sensor
 * fault reads FAULT; stale data is greyed by the parent (class `stale`).
 */
import { format, NUMERICS, type ChannelInfo } from './channels.js';
import { h, setAttr, setText, toggle } from './dom.js';
import { outside, type Limits } from './limits.js';

interface Cell { root: HTMLElement; value: HTMLElement; flag: HTMLElement; sp: HTMLElement; lim: HTMLElement; info: ChannelInfo }

export class NumericsPanel {
  readonly el: HTMLElement;
  private readonly cells: Cell[] = [];

  constructor(opts: { replay: boolean }) {
    this.el = h('section', { class: 'numerics', 'aria-label': opts.replay ? 'Replayed values' : 'Live values' });
    for (const info of NUMERICS) {
      const value = h('span', { class: 'num-value', 'data-channel': info.key }, '---');
      const flag = h('span', { class: 'num-flag' });
      const sp = h('span', { class: 'num-sp' });
      const lim = h('span', { class: 'num-lim' });
      const root = h('div', { class: 'num', 'data-channel': info.key, role: 'group', 'aria-label': `${info.label} ${info.key}` },
        h('div', { class: 'num-head' }, h('span', { class: 'num-key' }, info.key), h('span', { class: 'num-label' }, info.label), flag),
        h('div', { class: 'num-main' }, value, h('span', { class: 'num-unit' }, info.unit)),
        h('div', { class: 'num-foot' }, sp, lim));
      if (opts.replay) root.append(h('span', { class: 'replay-tag', 'aria-hidden': 'true' }, 'REPLAY'));
      if (info.optional) root.hidden = true;
      this.el.append(root);
      this.cells.push({ root, value, flag, sp, lim, info });
    }
  }

  update(values: Record<string, number | null>, limits: Map<string, Limits>): void {
    for (const c of this.cells) {
      const k = c.info.key;
      const present = k in values;
      if (c.info.optional) {
        if (c.root.hidden === present) c.root.hidden = !present;
        if (!present) continue;
      }
      const v = values[k];
      setText(c.value, format(k, v));
      toggle(c.root, 'fault', v === null);
      const l = limits.get(k);
      const out = outside(v, l);
      setAttr(c.root, 'data-out', out ?? '');
      setText(c.flag, out === 'high' ? '▲ HIGH' : out === 'low' ? '▼ LOW' : v === null ? 'SENSOR FAULT' : '');
      if (c.info.setpoint) {
        const sp = values[c.info.setpoint];
        setText(c.sp, sp === undefined ? 'set ---' : `set ${format(k, sp)}`);
      }
      setText(c.lim, limitText(k, l));
    }
  }
}

function limitText(k: string, l: Limits | undefined): string {
  if (!l || (l.lo === null && l.hi === null)) return '';
  if (l.lo !== null && l.hi !== null) return `limits ${format(k, l.lo)}–${format(k, l.hi)}`;
  return l.hi !== null ? `limit ≤ ${format(k, l.hi)}` : `limit ≥ ${format(k, l.lo)}`;
}
