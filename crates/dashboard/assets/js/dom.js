// Wharf dashboard: building DOM without innerHTML (all data goes in as text nodes), safe
// links, times as ages, and terminal output (ANSI SGR colours) turned into classed spans.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Properties set on the element rather than as attributes. */
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden']);

function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'style') {
      // The Content-Security-Policy forbids inline styles: use a class instead.
      throw new Error('h(): inline style attributes are not allowed');
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'href') {
      el.setAttribute('href', safeHref(value));
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/** Appends children: nodes as they are, anything else as text; arrays are flattened. */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** `h('a', {href, class}, 'text', otherNode)`: an HTML element whose strings are text. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  return append(el, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttributes(el, attrs);
  return append(el, children);
}

/** Removes every child of `el`, then appends `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** `url` when it is http(s) or a same-origin path; otherwise a harmless `#`. */
export function safeHref(url) {
  const text = String(url);
  if (text.startsWith('#') || (text.startsWith('/') && !text.startsWith('//'))) return text;
  try {
    const parsed = new URL(text);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed.href;
  } catch {
    // Not a URL: fall through.
  }
  return '#';
}

/** An `encodeURIComponent`-joined API path: `path('apps', name, 'dynos')`. */
export function path(...segments) {
  return '/' + segments.map((segment) => encodeURIComponent(String(segment))).join('/');
}

const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/** "3 minutes ago", "just now", "in 2 hours". */
export function ago(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '';
  const seconds = Math.round((now - at) / 1000);
  const magnitude = Math.abs(seconds);
  if (magnitude < 10) return 'just now';
  for (const [unit, size] of UNITS) {
    if (magnitude >= size) {
      const count = Math.floor(magnitude / size);
      const words = `${count} ${unit}${count === 1 ? '' : 's'}`;
      return seconds >= 0 ? `${words} ago` : `in ${words}`;
    }
  }
  return 'just now';
}

/** A `<time>` showing the age, with the exact time on hover. */
export function timeAgo(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
}

// ESC [ params letter (CSI), ESC ] ... BEL/ST (OSC), or a lone ESC with one character.
const ESCAPE = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]?)/g;
// Control characters other than tab (and the escape handled above).
const CONTROL = /[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]/g;

/** `text` without terminal escapes or control characters. */
export function stripAnsi(text) {
  return String(text).replace(ESCAPE, '').replace(CONTROL, '');
}

/**
 * Nodes showing `text` with its SGR colours (`\x1b[31m`) as spans of classes `fg-1`,
 * `bold`, ...; every other escape and control character is dropped. Text stays text.
 */
export function ansiNodes(text) {
  const nodes = [];
  let fg = null;
  let bold = false;
  let last = 0;
  const push = (chunk) => {
    const clean = chunk.replace(CONTROL, '');
    if (!clean) return;
    if (fg === null && !bold) {
      nodes.push(document.createTextNode(clean));
    } else {
      const classes = [fg === null ? '' : `fg-${fg}`, bold ? 'bold' : ''].filter(Boolean);
      nodes.push(h('span', { class: classes.join(' ') }, clean));
    }
  };
  const source = String(text);
  for (const match of source.matchAll(ESCAPE)) {
    push(source.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[2] !== 'm') continue;
    const codes = (match[1] || '0').split(';').map((code) => Number(code || 0));
    for (const code of codes) {
      if (code === 0) {
        fg = null;
        bold = false;
      } else if (code === 1) bold = true;
      else if (code === 22) bold = false;
      else if (code >= 30 && code <= 37) fg = code - 30;
      else if (code >= 90 && code <= 97) fg = code - 90 + 8;
      else if (code === 39) fg = null;
    }
  }
  push(source.slice(last));
  return nodes;
}

/** A short status line for errors and confirmations, shown as text. */
export function notice(kind, message) {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

/** Replaces the contents of `slot` with a notice for `error` (an API error's message verbatim). */
export function showError(slot, error) {
  replace(slot, notice('error', error && error.message ? error.message : String(error)));
}

/** `1,234` */
export function number(value) {
  return Number(value).toLocaleString('en-US');
}

/**
 * A button that asks before acting, in the page (no browser dialog): the first click shows
 * `question` with Confirm and Cancel; Confirm runs `action()`.
 */
export function confirmButton(label, question, action, { danger = false, attrs = {} } = {}) {
  const wrap = h('span', { class: 'confirm' });
  const start = h('button', { type: 'button', class: danger ? 'button-danger' : 'button', ...attrs }, label);
  const idle = () => replace(wrap, start);
  start.addEventListener('click', () => {
    const yes = h('button', { type: 'button', class: 'button-danger confirm-yes' }, 'Confirm');
    const no = h('button', { type: 'button', class: 'button-quiet', onclick: idle }, 'Cancel');
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      no.disabled = true;
      try {
        await action();
      } finally {
        idle();
      }
    });
    replace(wrap, h('span', { class: 'confirm-question' }, question), ' ', yes, ' ', no);
    yes.focus();
  });
  return idle();
}
