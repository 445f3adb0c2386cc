// Wharf dashboard: time-series charts drawn as SVG, no library. Lines (min/max decimated to at
// most one point per pixel column), stacked bars (bucket means), dashed reference lines,
// event annotations as vertical lines, markers for error events, and a hover read-out. Each
// chart's container exposes what it drew: `el.chartData = {series, events}` and
// `data-points` (the number of points drawn), for tests and curious users.

import { h, replace, s } from './dom.js';

const HEIGHT = 180;
const MARGIN = { top: 14, right: 12, bottom: 22, left: 52 };
const FALLBACK_WIDTH = 640;
const TICKS_Y = 4;
const MAX_TICKS_X = 8;
const MINUTE = 60_000;
const TICK_STEPS = [1, 5, 10, 15, 30, 60, 180, 360, 720, 1440, 2880].map((m) => m * MINUTE);

/**
 * At most `columns` points of `points` (sorted by time): per bucket of two pixel columns, the
 * lowest and the highest point in time order, so peaks and dips survive.
 */
export function decimate(points, from, to, columns) {
  if (points.length <= columns) return points;
  const buckets = Math.max(1, Math.floor(columns / 2));
  const span = Math.max(1, to - from);
  const out = [];
  let i = 0;
  for (let b = 0; b < buckets && i < points.length; b += 1) {
    const end = b === buckets - 1 ? Infinity : from + (span * (b + 1)) / buckets;
    let min = null;
    let max = null;
    while (i < points.length && points[i][0] < end) {
      const point = points[i];
      if (min === null || point[1] < min[1]) min = point;
      if (max === null || point[1] > max[1]) max = point;
      i += 1;
    }
    if (min === null) continue;
    if (min === max) out.push(min);
    else if (min[0] < max[0]) out.push(min, max);
    else out.push(max, min);
  }
  return out;
}

/**
 * Bucket means of several series over the same `columns` buckets, for stacking: returns one
 * array per series of `[t, mean]`, and the bucket times, aligned by index (null where empty).
 */
export function bucketMeans(seriesPoints, from, to, columns) {
  const longest = Math.max(0, ...seriesPoints.map((points) => points.length));
  if (longest <= columns) {
    // Few enough points: keep them as they are, aligned on their timestamps.
    const times = [...new Set(seriesPoints.flatMap((points) => points.map((p) => p[0])))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const aligned = seriesPoints.map((points) => {
      const row = new Array(times.length).fill(null);
      for (const [t, v] of points) row[index.get(t)] = v;
      return row;
    });
    return { times, aligned };
  }
  const span = Math.max(1, to - from);
  const sums = seriesPoints.map(() => new Float64Array(columns));
  const counts = seriesPoints.map(() => new Uint32Array(columns));
  const timeSums = new Float64Array(columns);
  const timeCounts = new Uint32Array(columns);
  seriesPoints.forEach((points, k) => {
    for (const [t, v] of points) {
      const b = Math.min(columns - 1, Math.max(0, Math.floor(((t - from) / span) * columns)));
      sums[k][b] += v;
      counts[k][b] += 1;
      if (k === 0 || timeCounts[b] === 0) {
        timeSums[b] += t;
        timeCounts[b] += 1;
      }
    }
  });
  const times = [];
  const aligned = seriesPoints.map(() => []);
  for (let b = 0; b < columns; b += 1) {
    if (!timeCounts[b] && !counts.some((c) => c[b])) continue;
    const t = timeCounts[b] ? Math.round(timeSums[b] / timeCounts[b]) : Math.round(from + ((b + 0.5) * span) / columns);
    times.push(t);
    aligned.forEach((row, k) => row.push(counts[k][b] ? sums[k][b] / counts[k][b] : null));
  }
  return { times, aligned };
}

/** A round upper bound for the y axis. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  // Each a multiple of TICKS_Y round steps: 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1, 1.25, 1.5, 2, 2.5.
  for (const factor of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) {
    if (factor * power >= value) return factor * power;
  }
  return 10 * power;
}

export function formatValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** An axis label: `0`, `0.5`, `250`, `1,000`. */
function tickLabel(value) {
  return Number(value.toPrecision(3)).toLocaleString('en-US');
}

function timeLabel(t, step) {
  const date = new Date(t);
  if (step >= 1440 * MINUTE) return date.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric' });
  return date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
}

/** The last index in `points` whose time is at most `t` (or 0), by binary search. */
function nearest(points, t) {
  let low = 0;
  let high = points.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (points[mid][0] <= t) low = mid;
    else high = mid - 1;
  }
  if (low + 1 < points.length && Math.abs(points[low + 1][0] - t) < Math.abs(points[low][0] - t)) return low + 1;
  return low;
}

/** An SVG path through `points`, broken where two are more than `gap` apart; a point with
 * no neighbour is a zero-length segment, which the round line cap draws as a dot. */
function linePath(points, x, y, gap) {
  let d = '';
  let previous = null;
  let run = 0;
  for (const [t, v] of points) {
    const start = previous === null || t - previous > gap;
    if (start && run === 1) d += 'h0';
    d += `${start ? 'M' : 'L'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
    run = start ? 1 : run + 1;
    previous = t;
  }
  if (run === 1) d += 'h0';
  return d;
}

/** One path of bars, a bar per time from `lower` to `upper` (stacked columns). */
function barPath(times, lower, upper, x, y, width) {
  let d = '';
  times.forEach((t, i) => {
    if (upper[i] === null || upper[i] === lower[i]) return;
    const top = y(upper[i]);
    d += `M${(x(t) - width / 2).toFixed(1)} ${top.toFixed(1)}h${width.toFixed(1)}V${y(lower[i]).toFixed(1)}h${(-width).toFixed(1)}Z`;
  });
  return d;
}

/**
 * A chart. `series`: `[{name, points: [[t_ms, value]], cls, dashed}]`; `events`: annotation
 * lines `[{at, kind, dyno, message}]`; `markers`: error events drawn as marks at the top;
 * `stacked`: draw the series as stacked bars; `unit`: shown after values.
 */
export function chart({ title, from, to, step = 60_000, series, events = [], markers = [], stacked = false, unit = '', id }) {
  const legend = h(
    'ul',
    { class: 'legend' },
    series.map((line) => h('li', null, h('span', { class: `swatch ${line.cls}${line.dashed ? ' dashed' : ''}` }), line.name)),
  );
  const plot = h('div', { class: 'chart-plot' });
  const tooltip = h('div', { class: 'chart-tooltip', hidden: true, role: 'status' });
  const container = h('figure', { class: 'chart', id }, h('figcaption', null, h('span', { class: 'chart-title' }, title), legend), plot, tooltip);
  let drawnWidth = 0;

  const draw = (measured) => {
    const width = Math.round(measured) || FALLBACK_WIDTH;
    if (width === drawnWidth) return;
    drawnWidth = width;
    const innerWidth = Math.max(10, width - MARGIN.left - MARGIN.right);
    const innerHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
    const x = (t) => MARGIN.left + ((t - from) / Math.max(1, to - from)) * innerWidth;
    const columns = Math.max(2, Math.floor(innerWidth));

    let drawn;
    let top = 0;
    let stackedRows = null;
    if (stacked) {
      const { times, aligned } = bucketMeans(series.map((line) => line.points), from, to, columns);
      drawn = aligned.map((row) => row.map((v, i) => [times[i], v]).filter((p) => p[1] !== null));
      const cumulative = [];
      let running = times.map(() => 0);
      for (const row of aligned) {
        const lower = running;
        const upper = row.map((v, i) => (v === null ? lower[i] : lower[i] + v));
        cumulative.push({ lower, upper });
        running = upper;
      }
      top = Math.max(0, ...running);
      stackedRows = { times, cumulative };
    } else {
      drawn = series.map((line) => decimate(line.points, from, to, columns));
      for (const points of drawn) for (const p of points) if (p[1] > top) top = p[1];
    }
    const yMax = niceMax(top);
    const y = (v) => MARGIN.top + innerHeight - (v / yMax) * innerHeight;
    const bucketWidth = ((to - from) / columns) * 2;
    // A bar per step (or per pixel column once the steps are narrower), with a little air.
    const barWidth = Math.max(1, (Math.max(step, (to - from) / columns) / Math.max(1, to - from)) * innerWidth * 0.8);
    const gap = Math.max(2.5 * step, 2.5 * bucketWidth);

    const grid = [];
    for (let i = 0; i <= TICKS_Y; i += 1) {
      const value = (yMax * i) / TICKS_Y;
      const yy = y(value).toFixed(1);
      grid.push(s('line', { class: 'grid', x1: MARGIN.left, x2: width - MARGIN.right, y1: yy, y2: yy }));
      grid.push(s('text', { class: 'axis', x: MARGIN.left - 6, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, `${tickLabel(value)}${unit && i === TICKS_Y ? ` ${unit}` : ''}`));
    }
    const tickStep = TICK_STEPS.find((candidate) => (to - from) / candidate <= MAX_TICKS_X) || TICK_STEPS[TICK_STEPS.length - 1];
    const offset = new Date().getTimezoneOffset() * MINUTE;
    for (let t = Math.ceil((from - offset) / tickStep) * tickStep + offset; t <= to; t += tickStep) {
      grid.push(s('text', { class: 'axis', x: x(t).toFixed(1), y: HEIGHT - 6, 'text-anchor': 'middle' }, timeLabel(t, tickStep)));
    }

    const shapes = [];
    if (stackedRows) {
      stackedRows.cumulative.forEach(({ lower, upper }, k) => {
        shapes.push(s('path', { class: `bars ${series[k].cls}`, d: barPath(stackedRows.times, lower, upper, x, y, barWidth) }));
      });
    } else {
      drawn.forEach((points, k) => {
        const line = series[k];
        shapes.push(s('path', { class: `line ${line.cls}${line.dashed ? ' dashed' : ''}`, d: linePath(points, x, y, gap) }));
      });
    }
    const inRange = (event) => event.at >= from && event.at <= to;
    const annotations = events.filter(inRange).map((event) =>
      s(
        'line',
        { class: `event event-${event.kind}`, x1: x(event.at).toFixed(1), x2: x(event.at).toFixed(1), y1: MARGIN.top, y2: MARGIN.top + innerHeight },
        s('title', null, `${event.kind}${event.dyno ? ` ${event.dyno}` : ''}: ${event.message}`),
      ),
    );
    const marks = markers.filter(inRange).map((event) => {
      const xx = x(event.at);
      return s(
        'path',
        { class: `marker marker-${event.kind}`, d: `M${(xx - 5).toFixed(1)} ${MARGIN.top - 10}L${(xx + 5).toFixed(1)} ${MARGIN.top - 10}L${xx.toFixed(1)} ${MARGIN.top - 1}Z` },
        s('title', null, `${event.kind}${event.dyno ? ` ${event.dyno}` : ''}: ${event.message}`),
      );
    });
    const empty = drawn.every((points) => points.length === 0)
      ? s('text', { class: 'chart-empty', x: MARGIN.left + innerWidth / 2, y: MARGIN.top + innerHeight / 2, 'text-anchor': 'middle' }, 'No data in this range')
      : null;
    const crosshair = s('line', { class: 'crosshair', x1: 0, x2: 0, y1: MARGIN.top, y2: MARGIN.top + innerHeight, visibility: 'hidden' });
    const overlay = s('rect', { class: 'overlay', x: MARGIN.left, y: 0, width: innerWidth, height: HEIGHT });
    const svg = s('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': title }, grid, shapes, annotations, marks, empty, crosshair, overlay);
    replace(plot, svg);

    container.chartData = {
      series: series.map((line, k) => ({ name: line.name, points: drawn[k] })),
      events: [...events, ...markers].filter(inRange),
    };
    container.dataset.points = String(drawn.reduce((total, points) => total + points.length, 0));

    const hover = (event) => {
      const box = svg.getBoundingClientRect();
      const px = event.clientX - box.left;
      const t = from + ((px - MARGIN.left) / innerWidth) * (to - from);
      const rows = [];
      let at = null;
      drawn.forEach((points, k) => {
        if (points.length === 0) return;
        const point = points[nearest(points, t)];
        if (at === null || Math.abs(point[0] - t) < Math.abs(at - t)) at = point[0];
        rows.push(h('div', null, h('span', { class: `swatch ${series[k].cls}` }), `${series[k].name}: ${formatValue(point[1])}${unit ? ` ${unit}` : ''}`));
      });
      if (at === null) return;
      const near = [...events, ...markers].filter((e) => Math.abs(x(e.at) - x(at)) <= 4);
      for (const e of near) rows.push(h('div', { class: 'tooltip-event' }, `${e.kind}${e.dyno ? ` ${e.dyno}` : ''}: ${e.message}`));
      replace(tooltip, h('div', { class: 'tooltip-time' }, new Date(at).toLocaleString('en-GB')), rows);
      tooltip.hidden = false;
      crosshair.setAttribute('x1', x(at).toFixed(1));
      crosshair.setAttribute('x2', x(at).toFixed(1));
      crosshair.setAttribute('visibility', 'visible');
      const left = Math.min(Math.max(0, x(at) + 12), Math.max(0, width - 220));
      tooltip.style.left = `${left}px`;
    };
    overlay.addEventListener('pointermove', hover);
    overlay.addEventListener('pointerleave', () => {
      tooltip.hidden = true;
      crosshair.setAttribute('visibility', 'hidden');
    });
  };

  let frame = 0;
  const observer = new ResizeObserver((entries) => {
    const width = entries[entries.length - 1].contentRect.width;
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => draw(width));
  });
  observer.observe(plot);
  container.disconnect = () => observer.disconnect();
  return container;
}
