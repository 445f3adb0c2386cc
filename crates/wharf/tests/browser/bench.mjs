// Wharf dashboard bench: how the metrics page and the live log hold up under load, in
// Debian's Chromium. Not a test of Wharf's server: a local stand-in (127.0.0.1, port 0) serves
// the real dashboard files from crates/dashboard/assets under the real Content-Security-Policy,
// and answers the few API calls these pages make with synthetic data: 7 days of per-minute
// metrics for 10 dynos, and a log stream of LOG_RATE lines a second. Prints what it measured.
//
//   node bench.mjs            (CHROMIUM overrides /usr/bin/chromium; BENCH_STEP=60 sends the
//                             week at one point a minute instead of the server's 600 s steps)

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ASSETS = fileURLToPath(new URL('../../../dashboard/assets/', import.meta.url));
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const DYNOS = 10;
const STEP_S = Number(process.env.BENCH_STEP || 600);
const RANGE_S = 7 * 24 * 3600;
const LOG_RATE = 1000;
const LOG_SECONDS = 10;

const now = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S;
const iso = (seconds) => new Date(seconds * 1000).toISOString();
/** A deterministic wobble, so runs are comparable. */
const wave = (i, k) => Math.sin(i / (50 + k * 7)) * 0.5 + 0.5;

function dynoMetrics() {
  const dynos = [];
  for (let k = 0; k < DYNOS; k += 1) {
    const points = [];
    for (let t = now - RANGE_S, i = 0; t < now; t += STEP_S, i += 1) {
      points.push({
        at: iso(t),
        memory_rss_mb: 200 + 250 * wave(i, k) + (i % 997 === 0 ? 300 : 0),
        memory_swap_mb: 10 * wave(i, k + 3),
        memory_cache_mb: 40 + 20 * wave(i, k + 1),
        memory_quota_mb: 512,
        load_avg_1m: (k === 3 ? 2 : 0.4) * wave(i, k + 2),
      });
    }
    dynos.push({ dyno: `web.${k + 1}`, type: 'web', points });
  }
  return { range: '7d', step_seconds: STEP_S, from: iso(now - RANGE_S), to: iso(now), dynos };
}

function routerMetrics() {
  const points = [];
  for (let t = now - RANGE_S, i = 0; t < now; t += STEP_S, i += 1) {
    const requests = Math.round(600 + 400 * wave(i, 1));
    points.push({
      at: iso(t), requests, status_2xx: requests - 30, status_3xx: 10, status_4xx: 15, status_5xx: 5,
      p50_ms: 20 + 10 * wave(i, 2), p95_ms: 80 + 40 * wave(i, 3), p99_ms: 200 + 100 * wave(i, 4), max_ms: 900 * wave(i, 5),
    });
  }
  return { range: '7d', step_seconds: STEP_S, from: iso(now - RANGE_S), to: iso(now), points, totals: {}, errors: { H12: 30, H10: 2 } };
}

function events() {
  const kinds = ['deploy', 'restart', 'crash', 'scale', 'config', 'R14', 'H12'];
  const list = [];
  for (let i = 0; i < 140; i += 1) {
    list.push({ at: iso(now - RANGE_S + i * 4320), kind: kinds[i % kinds.length], dyno: i % 2 ? `web.${(i % DYNOS) + 1}` : null, message: `event ${i} <b>not bold</b>` });
  }
  return { range: '7d', from: iso(now - RANGE_S), to: iso(now), events: list };
}

const app = { name: 'bench', web_url: null, maintenance: false, owner: { email: 'bench@example.com' }, stack: { name: 'debian-12' }, build_stack: { name: 'debian-12' }, region: { name: 'local' } };
const bodies = {
  '/session': { email: 'bench@example.com', admin: false, csrf_token: 'x', expires_at: iso(now + 3600) },
  '/apps/bench': app,
  '/apps/bench/metrics/dynos': dynoMetrics(),
  '/apps/bench/metrics/router': routerMetrics(),
  '/apps/bench/metrics/events': events(),
  '/apps/bench/dynos': Array.from({ length: DYNOS }, (_, k) => ({ name: `web.${k + 1}`, type: 'web' })),
  '/apps/bench/log-sessions': { logplex_url: 'http://elsewhere.invalid/log-stream/token' },
};
const encoded = Object.fromEntries(Object.entries(bodies).map(([path, body]) => [path, JSON.stringify(body)]));

function logStream(response) {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let seq = 0;
  const batch = LOG_RATE / 20;
  const timer = setInterval(() => {
    let chunk = '';
    for (let i = 0; i < batch; i += 1) {
      seq += 1;
      const line = seq % 3 === 0
        ? `${new Date().toISOString()} heroku[router]: at=info method=GET path="/item/${seq}" status=200 service=3ms`
        : `${new Date().toISOString()} app[web.${(seq % DYNOS) + 1}]: line ${seq} <script>alert(${seq})</script> \u001b[32mok\u001b[0m`;
      chunk += `id: ${seq}\ndata: ${line}\n\n`;
    }
    response.write(chunk);
  }, 50);
  response.on('close', () => clearInterval(timer));
}

const server = http.createServer(async (request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (url.pathname === '/' || url.pathname.startsWith('/assets/')) {
    const file = url.pathname === '/' ? 'index.html' : normalize(url.pathname.slice('/assets/'.length));
    if (file.startsWith('..')) return response.writeHead(404).end();
    try {
      const body = await readFile(join(ASSETS, file));
      response.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'content-security-policy': CSP });
      return response.end(body);
    } catch {
      return response.writeHead(404).end();
    }
  }
  if (url.pathname === '/log-stream/token') return logStream(response);
  const body = encoded[url.pathname];
  if (!body) return response.writeHead(404, { 'content-type': 'application/json' }).end('{"id":"not_found","message":"nothing here"}');
  response.writeHead(200, { 'content-type': 'application/json' });
  return response.end(body);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && /Security Policy/.test(message.text()) && problems.push(message.text()));
  await page.goto(`${base}/#/apps/bench/metrics`);
  await page.waitForFunction(() => document.querySelector('.range-picker button'));
  // Long tasks from here on: work that blocked the page for more than 50 ms.
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: false });
  });
  const started = Date.now();
  await page.click('.range-picker button[data-range="7d"]');
  await page.waitForFunction((count) => document.querySelectorAll('.chart[data-points]').length === count, DYNOS + 3, { timeout: 60_000 });
  const drawn = Date.now() - started;
  const figures = await page.evaluate(() => {
    const charts = [...document.querySelectorAll('.chart')];
    return { charts: charts.length, points: charts.reduce((n, c) => n + Number(c.dataset.points), 0), widest: Math.max(...charts.map((c) => c.querySelector('svg').width.baseVal.value)) };
  });
  // Hover: 200 pointer moves across the first memory chart.
  const box = await page.locator('#chart-memory-web\\.1 .overlay').boundingBox();
  const hoverStart = Date.now();
  for (let i = 0; i < 200; i += 1) await page.mouse.move(box.x + (box.width * i) / 200, box.y + box.height / 2);
  const hoverMs = (Date.now() - hoverStart) / 200;
  const metricsLongTasks = await page.evaluate(() => window.longTasks.slice());
  console.log(`metrics, 7 days × ${DYNOS} dynos at ${STEP_S} s (${(encoded['/apps/bench/metrics/dynos'].length / 1e6).toFixed(1)} MB of dyno JSON):`);
  console.log(`  ${figures.charts} charts drawn in ${drawn} ms (fetch, parse, decimate, SVG), ${figures.points} points drawn in all, widest plot ${figures.widest} px`);
  console.log(`  hover: ${hoverMs.toFixed(1)} ms per pointer move (round trip from the driver)`);
  console.log(`  long tasks: ${metricsLongTasks.length}, longest ${Math.round(Math.max(0, ...metricsLongTasks))} ms`);

  await page.evaluate(() => {
    window.location.hash = '#/apps/bench/logs';
  });
  await page.waitForFunction(() => (document.querySelector('.log-status') || {}).textContent?.startsWith('Streaming'));
  await page.evaluate(() => {
    window.longTasks = [];
    window.frames = [];
    let last = performance.now();
    const tick = (t) => {
      window.frames.push(t - last);
      last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await new Promise((resolve) => setTimeout(resolve, LOG_SECONDS * 1000));
  const logs = await page.evaluate(() => ({
    status: document.querySelector('.log-status').textContent,
    lines: document.querySelectorAll('#log-view .log-line').length,
    scripts: document.querySelectorAll('#log-view script').length,
    frames: window.frames.length,
    worstFrame: Math.max(...window.frames),
    longTasks: window.longTasks.slice(),
  }));
  console.log(`live log at ${LOG_RATE} lines/s for ${LOG_SECONDS} s:`);
  console.log(`  ${logs.status}; ${logs.lines} lines in the view, ${logs.scripts} script elements`);
  console.log(`  ${(logs.frames / LOG_SECONDS).toFixed(0)} frames/s, worst frame ${Math.round(logs.worstFrame)} ms, long tasks ${logs.longTasks.length} (longest ${Math.round(Math.max(0, ...logs.longTasks))} ms)`);
  if (problems.length) console.log(`page errors: ${problems.join(' | ')}`);
} finally {
  await browser.close();
  server.close();
}
