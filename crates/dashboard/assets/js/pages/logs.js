// Wharf dashboard: an app's live log. A tailing log session with the dyno and source filters
// of `wharf logs -d/-s`, pause and resume, lines coloured by source. Lines are queued and
// drawn once per animation frame; the view keeps at most MAX_LINES and says how many lines
// it dropped, so a fast app cannot freeze the tab.

import * as api from '../api.js';
import { ansiNodes, h, notice, number, path, replace } from '../dom.js';

/** The most lines in the view (and held while paused). */
const MAX_LINES = 2000;
/** Lines asked for when a session starts. */
const HISTORY_LINES = 100;
/** The wait before reading again after the stream closed (EventSource's default). */
const RETRY_MS = 3000;
const DYNO_COLOURS = 6;

/** `2026-...Z app[web.1]: message` → its parts, or null when the line has another shape. */
export function parseLine(line) {
  const match = /^(\S+) (\w+)\[([\w.-]+)\]: ([\s\S]*)$/.exec(line);
  if (!match) return null;
  return { at: match[1], source: match[2], dyno: match[3], message: match[4] };
}

/** The same colour for a dyno name every time (FNV-1a, as the CLI picks it). */
function dynoColour(dyno) {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(dyno)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash % DYNO_COLOURS;
}

/** One log line as DOM: timestamp, `source[dyno]` tag in its colour, message as text. */
export function lineNode(line) {
  const parts = parseLine(line);
  if (!parts) return h('div', { class: 'log-line' }, ansiNodes(line));
  let kind = 'app';
  if (parts.source === 'heroku') kind = parts.dyno === 'router' ? 'router' : 'heroku';
  else if (parts.dyno === 'api') kind = 'api';
  const tagClass = kind === 'app' ? `log-tag dyno-c${dynoColour(parts.dyno)}` : 'log-tag';
  return h(
    'div',
    { class: `log-line src-${kind}`, dataset: { source: parts.source, dyno: parts.dyno } },
    h('span', { class: 'log-time' }, parts.at),
    ' ',
    h('span', { class: tagClass }, `${parts.source}[${parts.dyno}]:`),
    ' ',
    h('span', { class: 'log-message' }, ansiNodes(parts.message)),
  );
}

function controls(dynos) {
  const types = [...new Set(dynos.map((dyno) => dyno.type))].sort();
  const names = dynos.map((dyno) => dyno.name).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const dyno = h(
    'select',
    { id: 'log-dyno', 'aria-label': 'Dyno or process type' },
    h('option', { value: '' }, 'All dynos'),
    types.length ? h('optgroup', { label: 'Process types' }, types.map((t) => h('option', { value: t }, `${t} (all)`))) : null,
    names.length ? h('optgroup', { label: 'Dynos' }, names.map((n) => h('option', { value: n }, n))) : null,
  );
  const source = h(
    'select',
    { id: 'log-source', 'aria-label': 'Source' },
    h('option', { value: '' }, 'All sources'),
    h('option', { value: 'app' }, 'app'),
    h('option', { value: 'heroku' }, 'heroku (platform and router)'),
  );
  const pause = h('button', { type: 'button', class: 'button', id: 'log-pause' }, 'Pause');
  const clear = h('button', { type: 'button', class: 'button-quiet', id: 'log-clear' }, 'Clear');
  return { dyno, source, pause, clear };
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const dynos = await api.get(path('apps', app.name, 'dynos'), { signal }).catch((error) => {
    if (error.name === 'AbortError' || error.status === 401) throw error;
    return [];
  });
  if (ctx.stale()) return;
  const { dyno, source, pause, clear } = controls(dynos);
  const status = h('p', { class: 'log-status muted small', 'aria-live': 'polite' });
  const message = h('div', { class: 'form-message' });
  const view = h('div', { class: 'log-view', id: 'log-view', role: 'log', tabindex: '0' });
  replace(
    body,
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'log-controls' }, dyno, source, pause, clear),
      message,
      status,
      view,
    ),
  );

  let queue = [];
  let paused = false;
  let scheduled = false;
  let received = 0;
  let dropped = 0;
  let state = 'Connecting…';
  const drawStatus = () => {
    const parts = [state, `${number(received)} lines`];
    if (paused) parts.push(`paused, ${number(queue.length)} waiting`);
    if (dropped) parts.push(`${number(dropped)} dropped (the view keeps the last ${number(MAX_LINES)} lines)`);
    status.textContent = parts.join(' · ');
  };
  const flush = () => {
    scheduled = false;
    if (!paused && queue.length) {
      let lines = queue;
      queue = [];
      if (lines.length > MAX_LINES) {
        dropped += lines.length - MAX_LINES;
        lines = lines.slice(lines.length - MAX_LINES);
      }
      const stick = view.scrollTop + view.clientHeight >= view.scrollHeight - 8;
      const fragment = document.createDocumentFragment();
      for (const line of lines) fragment.append(lineNode(line));
      view.append(fragment);
      let extra = view.childElementCount - MAX_LINES;
      while (extra-- > 0) view.firstElementChild.remove();
      if (stick) view.scrollTop = view.scrollHeight;
    }
    drawStatus();
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };
  const accept = (line) => {
    received += 1;
    queue.push(line);
    if (queue.length > MAX_LINES * 2) {
      // Paused or the tab is hidden: keep only what the view could show.
      const excess = queue.length - MAX_LINES;
      dropped += excess;
      queue = queue.slice(excess);
    }
    schedule();
  };

  let stream = null;
  const start = async () => {
    if (stream) stream.abort();
    const controller = new AbortController();
    stream = controller;
    signal.addEventListener('abort', () => controller.abort());
    state = 'Connecting…';
    drawStatus();
    replace(message);
    const body = { tail: true, lines: HISTORY_LINES };
    if (dyno.value) body.dyno = dyno.value;
    if (source.value) body.source = source.value;
    let lastId = null;
    try {
      const session = await api.post(path('apps', app.name, 'log-sessions'), body, { signal: controller.signal });
      for (;;) {
        let response;
        try {
          response = await api.openStream(session.logplex_url, {
            signal: controller.signal,
            headers: lastId ? { 'Last-Event-ID': lastId } : {},
          });
        } catch (error) {
          if (error.name === 'AbortError') return;
          if (error.status === 404 || error.status === 403) throw error;
          state = 'Reconnecting…';
          drawStatus();
          await wait(RETRY_MS, controller.signal);
          continue;
        }
        state = 'Streaming';
        drawStatus();
        try {
          await api.readEvents(
            response,
            (event) => {
              if (event.id !== null) lastId = event.id;
              for (const line of event.data.split('\n')) accept(line);
            },
            (comment) => {
              if (comment && comment !== 'ping') replace(message, notice('info', comment));
            },
          );
        } catch (error) {
          if (error.name === 'AbortError') return;
        }
        state = 'Reconnecting…';
        drawStatus();
        await wait(RETRY_MS, controller.signal);
      }
    } catch (error) {
      if (error.name === 'AbortError') return;
      state = 'Stopped';
      drawStatus();
      replace(
        message,
        notice('error', error.message),
        h('button', { type: 'button', class: 'button', onclick: start }, 'Start again'),
      );
    }
  };

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    schedule();
  });
  clear.addEventListener('click', () => {
    replace(view);
    queue = [];
    received = 0;
    dropped = 0;
    drawStatus();
  });
  const restart = () => {
    replace(view);
    queue = [];
    start();
  };
  dyno.addEventListener('change', restart);
  source.addEventListener('change', restart);
  ctx.onLeave(() => stream && stream.abort());
  start();
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` aborts first. */
function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('aborted', 'AbortError'));
    }, { once: true });
  });
}
