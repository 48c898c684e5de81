// The console builds its pages from elements and text nodes only: nothing it shows (labels, DIDs,
// decoded payloads, error messages) is ever parsed as HTML. The CSP's Trusted Types enforce it.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function table(caption, head, rows) {
  return h('table', {}, h('caption', {}, caption), h('thead', {}, h('tr', {}, head.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((x) => h('td', {}, x))))));
}

export const field = (label, input) => h('label', {}, h('span', {}, label), input);
