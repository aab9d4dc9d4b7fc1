/** Modal dialogs on the native <dialog> (focus kept inside, Escape cancels: keyboard reachable for free). */
import { h, type Child } from './dom.js';

export interface DialogField { name: string; label: string; input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement }

/** Shows a modal; resolves with the fields' values on confirm, null on cancel. */
export function modal(title: string, body: Child[], fields: DialogField[], confirmText: string, danger = false): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', {}, title), ...body,
      ...fields.map((f) => h('label', { class: 'field' }, h('span', {}, f.label), f.input)),
      h('div', { class: 'dialog-buttons' },
        h('button', { type: 'button', class: 'btn', value: 'cancel', 'data-action': 'cancel', onclick: () => close(null) }, 'Cancel'),
        h('button', { type: 'submit', class: danger ? 'btn btn-danger' : 'btn btn-primary', value: 'ok', 'data-action': 'confirm' }, confirmText)));
    const dlg = h('dialog', { class: 'dialog' }, form);
    let done = false;
    const close = (v: Record<string, string> | null) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      close(Object.fromEntries(fields.map((f) => [f.name, f.input.value])));
    });
    dlg.addEventListener('cancel', () => close(null));
    document.body.append(dlg);
    dlg.showModal();
    (fields[0]?.input ?? form.querySelector<HTMLButtonElement>('[data-action=confirm]'))?.focus();
  });
}

export function textInput(name: string, attrs: Record<string, string | number | boolean> = {}): HTMLInputElement {
  return h('input', { name, type: 'text', autocomplete: 'off', ...attrs });
}

export function select(name: string, options: Array<[string, string]>): HTMLSelectElement {
  return h('select', { name }, ...options.map(([v, label]) => h('option', { value: v }, label)));
}

/** A short message near the control that caused it (role=status so screen readers announce it). */
export function outcome(el: HTMLElement, kind: 'ok' | 'rej' | 'err' | 'pending', text: string): void {
  el.dataset.kind = kind;
  el.textContent = text;
}
