// Wharf dashboard: a terminal-like view of build and release-phase output, read live from
// the stream URL the API hands out, with ANSI colours as classed spans and everything as text.

import { openStream, readText } from './api.js';
import { ansiNodes, h, notice, replace } from './dom.js';

/** The most lines one output view keeps; older lines leave the view. */
const MAX_LINES = 5000;

/**
 * A `<pre>` that fills with the output at `url`, live while it runs. `onEnd()` runs when the
 * stream closes; the view stops reading when `signal` aborts.
 */
export function outputView(url, signal, onEnd = () => {}) {
  const pre = h('pre', { class: 'terminal', 'aria-live': 'off' });
  const status = h('p', { class: 'muted small' }, 'Reading output…');
  const view = h('div', { class: 'output' }, status, pre);
  let partial = '';
  let pending = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const fragment = document.createDocumentFragment();
    for (const line of pending) fragment.append(h('span', { class: 'line' }, ansiNodes(line)), '\n');
    pending = [];
    pre.append(fragment);
    while (pre.childNodes.length > MAX_LINES * 2) {
      pre.firstChild.remove();
      pre.firstChild.remove();
    }
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  const queue = (line) => {
    // A carriage return redraws a terminal line: keep what was drawn last.
    pending.push(line.slice(line.lastIndexOf('\r') + 1));
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };
  (async () => {
    try {
      const response = await openStream(url, { signal });
      status.textContent = 'Live output:';
      await readText(response, (chunk) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop();
        lines.forEach(queue);
      });
      if (partial) queue(partial);
      status.textContent = 'Output:';
      onEnd();
    } catch (error) {
      if (error.name === 'AbortError') return;
      replace(status, notice('error', error.message));
    }
  })();
  return view;
}
