// Wharf dashboard: an app's metrics for the last hour, day or week. Memory per dyno (RSS,
// swap, cache, the quota dashed, R14/R15 marked), load per process type (a line per dyno), and
// for web: response times, throughput by status class and router errors. Platform events
// (deploys, restarts, crashes, scaling, config changes) are vertical lines on the charts.

import * as api from '../api.js';
import { h, notice, number, path, replace, timeAgo } from '../dom.js';
import { chart } from '../chart.js';

const RANGES = [
  ['1h', 'Past hour'],
  ['24h', 'Past 24 hours'],
  ['7d', 'Past 7 days'],
];
/** Events drawn as lines on the charts; router (H…) and memory (R14/R15) codes are marks. */
const ANNOTATIONS = new Set(['deploy', 'rollback', 'config', 'scale', 'restart', 'crash']);
const PALETTE = 10;
/** Events listed below the charts (all of them are drawn on the charts). */
const EVENTS_LISTED = 20;
/** How often the charts are read again while the page is open (the API's step is a minute). */
const REFRESH_MS = 60_000;

/** The range picked last, kept while the dashboard is open. */
let chosenRange = '1h';

/** A metrics endpoint's body, or null when the server has none (404: not there yet). */
async function fetchOrNull(url, signal) {
  try {
    return await api.get(url, { signal });
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

function series(points, field) {
  const out = [];
  for (const point of points) {
    const value = point[field];
    if (typeof value === 'number' && Number.isFinite(value)) out.push([Date.parse(point.at), value]);
  }
  return out;
}

function typeOf(dyno) {
  const dot = dyno.lastIndexOf('.');
  return dot > 0 ? dyno.slice(0, dot) : dyno;
}

/** Events for charts about `dynos` (names): app-wide ones, and those of these dynos. */
function eventsFor(events, dynos) {
  return events.filter((event) => ANNOTATIONS.has(event.kind) && (!event.dyno || dynos.includes(event.dyno)));
}

/** `minute`, `10 minutes`, `30 s`. */
function stepWords(stepMs) {
  const seconds = Math.round(stepMs / 1000);
  if (seconds % 60 !== 0) return `${seconds} s`;
  const minutes = seconds / 60;
  return minutes === 1 ? 'minute' : `${minutes} minutes`;
}

function section(title, ...children) {
  return h('section', { class: 'card metrics-section' }, h('h2', null, title), children);
}

function webCharts(router, span, events, webDynos) {
  const points = router.points || [];
  const markers = events.filter((event) => /^H\d+$/.test(event.kind));
  const annotations = eventsFor(events, webDynos);
  const step = (router.step_seconds || 60) * 1000;
  const errors = Object.entries(router.errors || {}).sort((a, b) => b[1] - a[1]);
  const totals = router.totals || {};
  return section(
    'Web',
    h(
      'p',
      { class: 'muted small' },
      typeof totals.requests === 'number' ? `${number(totals.requests)} request${totals.requests === 1 ? '' : 's'} in this range. ` : '',
      errors.length
        ? ['Router errors: ', errors.map(([code, count]) => h('span', { class: `badge badge-error code-${code}` }, `${code} × ${number(count)}`))]
        : 'No router errors.',
    ),
    h(
      'div',
      { class: 'chart-grid' },
      chart({
        id: 'chart-response-time',
        title: 'Response time',
        unit: 'ms',
        ...span,
        step,
        series: [
          { name: 'p50', points: series(points, 'p50_ms'), cls: 's0' },
          { name: 'p95', points: series(points, 'p95_ms'), cls: 's1' },
          { name: 'p99', points: series(points, 'p99_ms'), cls: 's2' },
          { name: 'max', points: series(points, 'max_ms'), cls: 's3' },
        ],
        events: annotations,
        markers,
      }),
      chart({
        id: 'chart-throughput',
        title: `Throughput (requests per ${stepWords(step)})`,
        ...span,
        step,
        stacked: true,
        series: [
          { name: '2xx', points: series(points, 'status_2xx'), cls: 'status-2xx' },
          { name: '3xx', points: series(points, 'status_3xx'), cls: 'status-3xx' },
          { name: '4xx', points: series(points, 'status_4xx'), cls: 'status-4xx' },
          { name: '5xx', points: series(points, 'status_5xx'), cls: 'status-5xx' },
        ],
        events: annotations,
        markers,
      }),
    ),
  );
}

function dynoCharts(body, span, events) {
  const step = (body.step_seconds || 60) * 1000;
  const byType = new Map();
  for (const dyno of body.dynos || []) {
    const type = dyno.type || typeOf(dyno.dyno);
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(dyno);
  }
  return [...byType.keys()].sort().map((type) => {
    const dynos = byType.get(type).sort((a, b) => a.dyno.localeCompare(b.dyno, 'en', { numeric: true }));
    const names = dynos.map((dyno) => dyno.dyno);
    const load = chart({
      id: `chart-load-${type}`,
      title: `Load average (1m), ${type} dynos`,
      ...span,
      step,
      series: dynos.map((dyno, i) => ({ name: dyno.dyno, points: series(dyno.points, 'load_avg_1m'), cls: `s${i % PALETTE}` })),
      events: eventsFor(events, names),
    });
    const memory = dynos.map((dyno) =>
      chart({
        id: `chart-memory-${dyno.dyno}`,
        title: `Memory, ${dyno.dyno}`,
        unit: 'MB',
        ...span,
        step,
        series: [
          { name: 'RSS', points: series(dyno.points, 'memory_rss_mb'), cls: 's0' },
          { name: 'Swap', points: series(dyno.points, 'memory_swap_mb'), cls: 's3' },
          { name: 'Cache', points: series(dyno.points, 'memory_cache_mb'), cls: 's1' },
          { name: 'Quota', points: series(dyno.points, 'memory_quota_mb'), cls: 'quota', dashed: true },
        ],
        events: eventsFor(events, [dyno.dyno]),
        markers: events.filter((event) => (event.kind === 'R14' || event.kind === 'R15') && event.dyno === dyno.dyno),
      }),
    );
    return section(`${type} dynos`, h('div', { class: 'chart-grid' }, load, memory));
  });
}

function eventList(events) {
  if (events.length === 0) return null;
  const recent = events.slice().sort((a, b) => b.at - a.at).slice(0, EVENTS_LISTED);
  return section(
    events.length > EVENTS_LISTED ? `Events (the last ${EVENTS_LISTED} of ${number(events.length)})` : 'Events',
    h(
      'ol',
      { class: 'event-list' },
      recent.map((event) =>
        h(
          'li',
          { dataset: { kind: event.kind } },
          h('span', { class: `badge event-badge event-${event.kind}` }, event.kind),
          event.dyno ? h('strong', null, ` ${event.dyno}`) : null,
          ` ${event.message} `,
          h('span', { class: 'muted small' }, timeAgo(new Date(event.at).toISOString())),
        ),
      ),
    ),
  );
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const picker = h('div', { class: 'range-picker', role: 'group', 'aria-label': 'Time range' });
  const content = h('div', { class: 'metrics' }, h('p', { class: 'muted' }, 'Loading metrics…'));
  replace(body, h('div', { class: 'page-title' }, h('h2', null, 'Metrics'), picker), content);

  let timer = null;
  let loads = 0;
  const disconnect = () => {
    for (const old of content.querySelectorAll('.chart')) old.disconnect();
  };
  const drawPicker = () =>
    replace(
      picker,
      RANGES.map(([range, label]) =>
        h(
          'button',
          {
            type: 'button',
            class: range === chosenRange ? 'button-primary' : 'button',
            'aria-pressed': String(range === chosenRange),
            dataset: { range },
            onclick: () => {
              chosenRange = range;
              load(true);
            },
          },
          label,
        ),
      ),
    );
  /** Reads the range's metrics and redraws; `fresh` says so while it loads (a new range). */
  const load = async (fresh) => {
    const mine = ++loads;
    const superseded = () => ctx.stale() || mine !== loads;
    clearTimeout(timer);
    drawPicker();
    if (fresh) {
      disconnect();
      replace(content, h('p', { class: 'muted' }, 'Loading metrics…'));
    }
    const query = `?range=${encodeURIComponent(chosenRange)}`;
    const base = path('apps', app.name, 'metrics');
    let dynos;
    let router;
    let eventsBody;
    try {
      [dynos, router, eventsBody] = await Promise.all([
        fetchOrNull(`${base}/dynos${query}`, signal),
        fetchOrNull(`${base}/router${query}`, signal),
        fetchOrNull(`${base}/events${query}`, signal),
      ]);
    } catch (error) {
      if (error.name !== 'AbortError' && !superseded()) replace(content, notice('error', error.message));
      return;
    }
    if (superseded()) return;
    timer = setTimeout(() => load(false), REFRESH_MS);
    disconnect();
    const any = dynos || router;
    if (!any) {
      replace(content, h('p', { class: 'empty', id: 'metrics-empty' }, 'No data yet: this server does not keep metrics for the app.'));
      return;
    }
    const span = { from: Date.parse(any.from), to: Date.parse(any.to) };
    const events = ((eventsBody && eventsBody.events) || []).map((event) => ({ ...event, at: Date.parse(event.at) }));
    const webDynos = ((dynos && dynos.dynos) || []).filter((d) => (d.type || typeOf(d.dyno)) === 'web').map((d) => d.dyno);
    const parts = [];
    if (router && ((router.points || []).length || webDynos.length)) parts.push(webCharts(router, span, events, webDynos));
    if (dynos && (dynos.dynos || []).length) parts.push(...dynoCharts(dynos, span, events));
    if (parts.length === 0) parts.push(h('p', { class: 'empty', id: 'metrics-empty' }, 'No data yet for this range: no dyno ran and no request came.'));
    parts.push(eventList(events));
    replace(content, parts);
  };
  ctx.onLeave(() => {
    clearTimeout(timer);
    disconnect();
  });
  await load(true);
}
