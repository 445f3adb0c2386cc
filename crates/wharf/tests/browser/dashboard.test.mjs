// Wharf dashboard browser test: drives the dashboard in Debian's Chromium (playwright-core,
// no browser download) against a real `wharf server`, and checks what each page did against
// the API itself (with the user's key as a Bearer token). Run by crates/wharf/tests/dashboard.rs
// as `node dashboard.test.mjs`; exits 0 when every step passed, else 1 naming the first failure.
//
// Environment: WHARF_URL, WHARF_EMAIL, WHARF_API_KEY, WHARF_APP (owned by that user, its web
// dyno logging each request's path), WHARF_APP_URL (the app through the router; with
// WHARF_ROUTER_ADDRESS and WHARF_APP_HOST the request goes to that address with that Host),
// WHARF_OTHER_EMAIL, WHARF_OTHER_API_KEY (a user without access to the app), SCREENSHOT_DIR,
// and optionally CHROMIUM (default /usr/bin/chromium).

import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const ACCEPT = 'application/vnd.heroku+json; version=3';
/** How long one condition may take before the step fails. */
const WAIT_MS = 30_000;
/** Scaling starts containers: allow longer. */
const SCALE_WAIT_MS = 120_000;
/** Metrics come a minute at a time. */
const METRICS_WAIT_MS = 150_000;
const POLL_MS = 250;

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

const env = {
  url: need('WHARF_URL').replace(/\/$/, ''),
  email: need('WHARF_EMAIL'),
  key: need('WHARF_API_KEY'),
  app: need('WHARF_APP'),
  appUrl: need('WHARF_APP_URL'),
  routerAddress: process.env.WHARF_ROUTER_ADDRESS || '',
  appHost: process.env.WHARF_APP_HOST || '',
  otherEmail: need('WHARF_OTHER_EMAIL'),
  otherKey: need('WHARF_OTHER_API_KEY'),
  adminEmail: need('WHARF_ADMIN_EMAIL'),
  adminKey: need('WHARF_ADMIN_API_KEY'),
  screenshots: need('SCREENSHOT_DIR'),
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
};
const appPath = `#/apps/${encodeURIComponent(env.app)}`;

/** The API as the CLI uses it: `{status, body}`. */
async function api(method, path, { key = env.key, body, headers = {} } = {}) {
  const response = await fetch(env.url + path, {
    method,
    headers: { Accept: ACCEPT, 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

async function apiOk(method, path, options) {
  const { status, body } = await api(method, path, options);
  if (status >= 400) throw new Error(`${method} ${path} answered ${status}: ${JSON.stringify(body)}`);
  return body;
}

/** Polls `probe()` until it returns a truthy value; fails with `what` and the last state. */
async function until(what, probe, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout / 1000} s waiting for ${what} (last seen: ${JSON.stringify(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** One GET to the app through the router, with the Host the router routes on. */
function requestApp(path) {
  let host;
  let port;
  let hostHeader;
  if (env.routerAddress) {
    const colon = env.routerAddress.lastIndexOf(':');
    host = env.routerAddress.slice(0, colon).replace(/^\[|\]$/g, '');
    port = Number(env.routerAddress.slice(colon + 1));
    hostHeader = env.appHost || new URL(env.appUrl).host;
  } else {
    const url = new URL(env.appUrl);
    host = url.hostname;
    port = Number(url.port || 80);
    hostHeader = url.host;
  }
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, path, method: 'GET', headers: { Host: hostHeader } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', reject);
    request.end();
  });
}

let page;
let failures = 0;
/** The page's last requests and console lines, printed when a step fails. */
const recent = [];
function remember(line) {
  recent.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  if (recent.length > 40) recent.shift();
}
const steps = [];

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    steps.push(name);
    console.log(`ok ${steps.length} - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failures += 1;
    console.error(`not ok - ${name}: ${error.message}`);
    if (page) {
      await page.screenshot({ path: join(env.screenshots, 'failure.png'), fullPage: true }).catch(() => {});
      console.error(`page at failure: ${page.url()}`);
      const text = await page.locator('main').innerText().catch(() => '');
      console.error(text.slice(0, 2000));
      console.error(`the page's last requests and console lines:\n${recent.join('\n')}`);
    }
    throw error;
  }
}

async function shot(name) {
  await page.screenshot({ path: join(env.screenshots, `${name}.png`), fullPage: true });
}

/** Opens a page of the dashboard and waits until it has been drawn. */
async function go(hash) {
  await page.evaluate((target) => {
    window.location.hash = target;
  }, hash);
  await page.waitForFunction((target) => document.getElementById('main').dataset.rendered === target, hash, { timeout: WAIT_MS });
}

/** Logs in on the login page (the page must show it). */
async function logIn(email, key) {
  await page.locator('#login-email').fill(email);
  await page.locator('#login-key').fill(key);
  await page.locator('.login-form button[type=submit]').click();
}

async function main() {
  mkdirSync(env.screenshots, { recursive: true });
  const browser = await chromium.launch({ executablePath: env.chromium, args: ['--no-sandbox'] });
  const dialogs = [];
  const pageErrors = [];
  const newPage = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const opened = await context.newPage();
    opened.on('dialog', (dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    opened.on('pageerror', (error) => pageErrors.push(error.message));
    opened.on('console', (message) => remember(`console ${message.type()}: ${message.text()}`));
    opened.on('requestfinished', async (request) => {
      const response = await request.response().catch(() => null);
      remember(`${request.method()} ${new URL(request.url()).pathname} ${response ? response.status() : '?'}`);
    });
    opened.on('requestfailed', (request) => remember(`${request.method()} ${new URL(request.url()).pathname} failed: ${request.failure()?.errorText}`));
    opened.on('console', (message) => {
      if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) pageErrors.push(message.text());
    });
    return opened;
  };
  try {
    page = await newPage();

    await step('the dashboard is served with its security headers', async () => {
      const response = await page.goto(`${env.url}/#/login`);
      check(response.ok(), `GET / answered ${response.status()}`);
      const csp = response.headers()['content-security-policy'] || '';
      check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP: ${csp}`);
      check(/frame-ancestors 'none'/.test(csp), `CSP without frame-ancestors 'none': ${csp}`);
      await page.locator('#login-email').waitFor();
    });

    await step("a wrong key shows the API's message", async () => {
      const { status, body } = await fetch(`${env.url}/session`, {
        method: 'POST',
        headers: { Accept: ACCEPT, 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: env.email, api_key: 'not-the-key' }),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
      check(status === 401, `POST /session with a wrong key answered ${status}`);
      await logIn(env.email, 'not-the-key');
      const shown = await page.locator('.login-form .notice-error').textContent({ timeout: WAIT_MS });
      check(shown === body.message, `the page says ${JSON.stringify(shown)}, the API ${JSON.stringify(body.message)}`);
      await shot('login');
    });

    await step('log in and see the app listed', async () => {
      await logIn(env.email, env.key);
      await page.waitForURL(/#\/apps$/);
      const row = page.locator(`tr.app-row[data-app="${env.app}"]`);
      await row.waitFor({ timeout: WAIT_MS });
      const text = await row.innerText();
      check(/web \d+ × \w+/.test(text), `the app's row shows no formation: ${text}`);
      check(/v\d+ · /.test(text), `the app's row shows no last release: ${text}`);
      await shot('apps');
    });

    await step('create an app from the Apps page, and the API lists it', async () => {
      const name = `made-in-browser-${process.pid % 10000}`;
      await page.locator('#new-app').click();
      await page.locator('#new-app-name').fill(name);
      await page.locator('form.create-app button[type=submit]').click();
      await page.waitForURL(new RegExp(`#/apps/${name}$`), { timeout: WAIT_MS });
      const apps = await apiOk('GET', '/apps');
      check(apps.some((app) => app.name === name), `GET /apps does not list ${name}`);
      await go('#/apps');
      await page.locator(`tr.app-row[data-app="${name}"]`).waitFor();
      await page.locator('#app-search').fill(name);
      await until('the search to leave only the new app', async () => {
        const visible = await page.locator('tr.app-row:visible').evaluateAll((rows) => rows.map((r) => r.dataset.app));
        return visible.length === 1 && visible[0] === name;
      });
    });

    await step("the app's overview", async () => {
      await go(appPath);
      await page.locator('.card li[data-type="web"]').waitFor({ timeout: WAIT_MS });
      await shot('overview');
    });

    await step("a refused scale shows the API's message", async () => {
      const refused = await api('PATCH', `/apps/${env.app}/formation`, { body: { updates: [{ type: 'web', quantity: -1 }] } });
      check(refused.status >= 400, `scaling to -1 answered ${refused.status}`);
      await go(`${appPath}/resources`);
      const quantity = page.locator('input[name="quantity-web"]');
      await quantity.fill('-1');
      await page.locator('#save-formation').click();
      const shown = await page.locator('.formation-form .notice-error').textContent({ timeout: WAIT_MS });
      check(shown === refused.body.message, `the page says ${JSON.stringify(shown)}, the API ${JSON.stringify(refused.body.message)}`);
    });

    await step('scale web to 2 on Resources; the API reports 2 web dynos up', async () => {
      await go(`${appPath}/resources`);
      await page.locator('input[name="quantity-web"]').fill('2');
      await page.locator('#save-formation').click();
      await page.locator('.formation-form .notice-ok').waitFor({ timeout: WAIT_MS });
      const formation = await apiOk('GET', `/apps/${env.app}/formation`);
      check(formation.find((p) => p.type === 'web').quantity === 2, 'the formation says web is not at 2');
      await until(
        '2 web dynos up in the API',
        async () => {
          const dynos = await apiOk('GET', `/apps/${env.app}/dynos`);
          const up = dynos.filter((d) => d.type === 'web' && d.state === 'up');
          return up.length === 2 ? up : null;
        },
        SCALE_WAIT_MS,
      );
      // The page reads the dynos again by itself.
      await until('the page to list 2 web dynos up', () =>
        page.locator('#dynos tr[data-state="up"]').count().then((n) => n === 2),
      );
      await shot('resources');
    });

    let configRelease;
    await step("an invalid config var is refused with the API's message", async () => {
      const refused = await api('PATCH', `/apps/${env.app}/config-vars`, { body: { 'BAD KEY': 'x' } });
      check(refused.status >= 400, `setting "BAD KEY" answered ${refused.status}`);
      await go(`${appPath}/settings`);
      await page.locator('#reveal-config').click();
      await page.locator('#config-add-key').fill('BAD KEY');
      await page.locator('#config-add-value').fill('x');
      await page.locator('#config-add').click();
      const shown = await page.locator('#config-message .notice-error').textContent({ timeout: WAIT_MS });
      check(shown === refused.body.message, `the page says ${JSON.stringify(shown)}, the API ${JSON.stringify(refused.body.message)}`);
    });

    await step('change a config var on Settings', async () => {
      const value = '<b>bold</b> "quoted" \u001b[31mred\u001b[0m';
      await page.locator('#config-add-key').fill('GREETING');
      await page.locator('#config-add-value').fill(value);
      await page.locator('#config-add').click();
      await page.locator('.config-row[data-key="GREETING"]').waitFor({ timeout: WAIT_MS });
      const vars = await apiOk('GET', `/apps/${env.app}/config-vars`);
      check(vars.GREETING === value, `the API has GREETING=${JSON.stringify(vars.GREETING)}`);
      const shown = await page.locator('.config-row[data-key="GREETING"] input').inputValue();
      check(shown === value, `the page shows ${JSON.stringify(shown)}`);
      check((await page.locator('.config-vars b').count()) === 0, 'the value became markup');
      const releases = await apiOk('GET', `/apps/${env.app}/releases`, { headers: { Range: 'version ..; max=1, order=desc' } });
      configRelease = releases[0];
      check(/GREETING/.test(configRelease.description), `the newest release is ${JSON.stringify(configRelease.description)}`);
      await shot('settings');
    });

    await step('the new release shows in Activity; roll back from there', async () => {
      await go(`${appPath}/activity`);
      const item = page.locator(`li.release[data-version="${configRelease.version}"]`);
      await item.waitFor({ timeout: WAIT_MS });
      check((await item.innerText()).includes(configRelease.description), 'the release has not its description');
      const target = configRelease.version - 1;
      const targetItem = page.locator(`li.release[data-version="${target}"]`);
      await targetItem.locator('button.rollback').click();
      await targetItem.locator('button.confirm-yes').click();
      await page.locator('.card > .form-message .notice-ok').waitFor({ timeout: WAIT_MS });
      const releases = await apiOk('GET', `/apps/${env.app}/releases`, { headers: { Range: 'version ..; max=1, order=desc' } });
      const now = releases[0];
      check(now.current, 'the newest release is not current');
      check(now.version === configRelease.version + 1, `the current release is v${now.version}`);
      check(now.description === `Rollback to v${target}`, `the current release is ${JSON.stringify(now.description)}`);
      await page.locator(`li.release[data-version="${now.version}"]`).waitFor({ timeout: WAIT_MS });
      await shot('activity');
    });

    await step('a request with <script> in its path shows in the live log as text', async () => {
      await go(`${appPath}/logs`);
      await until('the log stream', () => page.locator('.log-status').textContent().then((t) => t.startsWith('Streaming')));
      const status = await requestApp('/%3Cscript%3Ealert(1)%3C/script%3E');
      check(status === 200, `the app answered ${status}`);
      const router = page.locator('#log-view .log-line.src-router', { hasText: 'alert(1)' });
      await router.first().waitFor({ timeout: WAIT_MS });
      const appLine = page.locator('#log-view .log-line.src-app', { hasText: '<script>alert(1)</script>' });
      await appLine.first().waitFor({ timeout: WAIT_MS });
      const text = await appLine.first().textContent();
      check(text.includes('"quoted"') && text.includes('red') && !text.includes('\u001b'), `the app's line reads ${JSON.stringify(text)}`);
      check((await appLine.first().locator('span.fg-1', { hasText: 'red' }).count()) === 1, 'the ANSI red is not coloured');
      check((await page.locator('#log-view script').count()) === 0, 'a script element is in the log view');
      const scripts = await page.evaluate(() => [...document.querySelectorAll('script')].map((s) => s.src));
      check(scripts.length === 1 && scripts[0].endsWith('/assets/js/main.js'), `scripts in the page: ${scripts}`);
      check(dialogs.length === 0, `dialogs fired: ${dialogs}`);
      await page.locator('#log-pause').click();
      await until('the view to say it is paused', () => page.locator('.log-status').textContent().then((t) => t.includes('paused')));
      await page.locator('#log-pause').click();
      await shot('logs');
    });

    await step("the metrics charts hold the app's real data points", async () => {
      // Samples are folded into minutes: wait until the API has one for a web dyno.
      const fromApi = await until(
        'the API to have memory samples of a web dyno',
        async () => {
          const body = await apiOk('GET', `/apps/${env.app}/metrics/dynos?range=1h`);
          const sampled = body.dynos.some((d) => d.type === 'web' && d.points.some((p) => p.memory_rss_mb > 0));
          return sampled ? body : null;
        },
        METRICS_WAIT_MS,
      );
      const web = fromApi.dynos.filter((d) => d.type === 'web' && d.points.some((p) => p.memory_rss_mb > 0));
      // The request the logs step made, counted by the router.
      await until(
        'the API to count a request to the app',
        async () => (await apiOk('GET', `/apps/${env.app}/metrics/router?range=1h`)).points.some((p) => p.status_2xx > 0),
        METRICS_WAIT_MS,
      );
      // What the page itself read from the API, to hold its charts against.
      const answers = ['dynos', 'router'].map((kind) =>
        page.waitForResponse((r) => r.url().includes(`/apps/${env.app}/metrics/${kind}?range=1h`), { timeout: WAIT_MS }),
      );
      await go(`${appPath}/metrics`);
      const [seen, seenRouter] = await Promise.all(answers.map(async (answer) => (await answer).json()));
      const first = web[0].dyno;
      const memory = await until(`the memory chart of ${first} to have points`, () =>
        page.evaluate((id) => {
          const el = document.getElementById(id);
          return el && el.chartData && Number(el.dataset.points) > 0 ? el.chartData : null;
        }, `chart-memory-${first}`),
      );
      const rss = memory.series.find((series) => series.name === 'RSS');
      check(rss && rss.points.length > 0, 'the memory chart drew no RSS point');
      // Every point drawn is a sample the API gave (decimation picks points, never makes them).
      const samples = new Map(seen.dynos.find((d) => d.dyno === first).points.map((p) => [Date.parse(p.at), p.memory_rss_mb]));
      for (const [t, value] of rss.points) {
        check(samples.get(t) === value, `the chart drew RSS ${value} at ${new Date(t).toISOString()}, the API said ${samples.get(t)}`);
      }
      check(rss.points.some(([, value]) => value > 0), 'every RSS point is 0');
      const load = await page.evaluate(() => {
        const el = document.getElementById('chart-load-web');
        return el && el.chartData;
      });
      check(load, 'there is no load chart for web');
      const names = load.series.map((series) => series.name).sort();
      const webNames = seen.dynos.filter((d) => d.type === 'web').map((d) => d.dyno).sort();
      check(JSON.stringify(names) === JSON.stringify(webNames), `the load chart has lines ${names}, the API dynos ${webNames}`);
      check(load.series.some((series) => series.points.length > 0), 'the load chart drew no point');
      const charts = await page.evaluate(() =>
        Object.fromEntries(['chart-response-time', 'chart-throughput'].map((id) => [id, document.getElementById(id)?.chartData || null])),
      );
      const twoXx = charts['chart-throughput']?.series.find((series) => series.name === '2xx');
      check(twoXx && twoXx.points.length > 0, 'the throughput chart drew no 2xx point');
      const counted = new Map(seenRouter.points.map((p) => [Date.parse(p.at), p.status_2xx]));
      for (const [t, value] of twoXx.points) {
        check(counted.get(t) === value, `the chart drew ${value} 2xx at ${new Date(t).toISOString()}, the API said ${counted.get(t)}`);
      }
      check(twoXx.points.some(([, value]) => value > 0), 'the throughput chart shows no request');
      const p95 = charts['chart-response-time']?.series.find((series) => series.name === 'p95');
      check(p95 && p95.points.length > 0, 'the response time chart drew no p95 point');
      const plot = page.locator(`#chart-memory-${first.replace('.', '\\.')} .overlay`);
      await plot.hover();
      await page.locator(`#chart-memory-${first.replace('.', '\\.')} .chart-tooltip:not([hidden])`).waitFor({ timeout: WAIT_MS });
      await shot('metrics');
      await page.locator('.range-picker button[data-range="24h"]').click();
      await until('the 24 hour charts', () =>
        page.evaluate(() => document.querySelector('.range-picker button[aria-pressed="true"]').dataset.range === '24h' && document.querySelectorAll('.chart[data-points]').length > 0),
      );
    });

    await step('Deploy lists the build and shows its output', async () => {
      await go(`${appPath}/deploy`);
      const build = page.locator('li.build[data-status="succeeded"]').first();
      await build.waitFor({ timeout: WAIT_MS });
      await build.locator('button', { hasText: 'Show output' }).click();
      await until('the build output', () => build.locator('pre.terminal').textContent().then((t) => t.trim().length > 0));
      await shot('deploy');
    });

    await step('add and remove a collaborator on Access', async () => {
      await go(`${appPath}/access`);
      await page.locator('#collaborator-email').fill(env.otherEmail);
      await page.locator('form.inline-form button[type=submit]').click();
      const row = page.locator(`tr[data-email="${env.otherEmail}"]`);
      await row.waitFor({ timeout: WAIT_MS });
      let collaborators = await apiOk('GET', `/apps/${env.app}/collaborators`);
      check(collaborators.some((c) => c.user.email === env.otherEmail), 'the API does not list the collaborator');
      await shot('access');
      await row.locator('button', { hasText: 'Remove' }).click();
      await row.locator('button.confirm-yes').click();
      await row.waitFor({ state: 'detached', timeout: WAIT_MS });
      collaborators = await apiOk('GET', `/apps/${env.app}/collaborators`);
      check(!collaborators.some((c) => c.user.email === env.otherEmail), 'the API still lists the removed collaborator');
    });

    await step('a session that ends sends the user back to the login page', async () => {
      await page.context().clearCookies();
      await page.evaluate((target) => {
        window.location.hash = target;
      }, `${appPath}/resources`);
      const shown = await page.locator('.login-form .notice-error').textContent({ timeout: WAIT_MS });
      check(shown === 'Your session ended; log in again', `the login page says ${JSON.stringify(shown)}`);
      await logIn(env.email, env.key);
      await page.waitForFunction((target) => document.getElementById('main').dataset.rendered === target, `${appPath}/resources`, { timeout: WAIT_MS });
      await page.locator('button', { hasText: 'Log out' }).click();
      await page.waitForURL(/#\/login$/, { timeout: WAIT_MS });
      await page.locator('#login-email').waitFor({ timeout: WAIT_MS });
      check((await api('GET', '/account')).status === 200, 'logging out of the dashboard ended the API key');
      await page.reload();
      await page.locator('#login-email').waitFor({ timeout: WAIT_MS });
    });

    await step('another user gets no page of the app', async () => {
      page = await newPage();
      await page.goto(`${env.url}/#/login`);
      await logIn(env.otherEmail, env.otherKey);
      await page.waitForURL(/#\/apps$/);
      await page.locator('.app-list table, .app-list .empty').first().waitFor({ timeout: WAIT_MS });
      check((await page.locator(`tr.app-row[data-app="${env.app}"]`).count()) === 0, "the other user's apps page lists the app");
      for (const tab of ['', '/settings', '/logs', '/metrics']) {
        await go(`${appPath}${tab}`);
        const text = await page.locator('main').innerText();
        check(/not found/i.test(text), `${appPath}${tab} shows: ${text.slice(0, 300)}`);
        check((await page.locator('.tabs').count()) === 0, `${appPath}${tab} shows the app's tabs`);
      }
      await shot('not-found');
    });

    await step('an admin lists the users; a user gets no admin page', async () => {
      await go('#/admin');
      check(/only admins/i.test(await page.locator('main').innerText()), 'a user sees the admin page');
      page = await newPage();
      await page.goto(`${env.url}/#/login`);
      await logIn(env.adminEmail, env.adminKey);
      await page.waitForURL(/#\/apps$/);
      await go('#/admin');
      await page.locator('#users tr[data-email]').first().waitFor({ timeout: WAIT_MS });
      const listed = await page.locator('#users tr[data-email]').evaluateAll((rows) => rows.map((row) => row.dataset.email));
      const expected = (await apiOk('GET', '/users', { key: env.adminKey })).map((user) => user.email);
      check(JSON.stringify(listed) === JSON.stringify(expected), `the admin page lists ${listed}, the API ${expected}`);
      for (const email of [env.email, env.otherEmail, env.adminEmail]) {
        check(listed.includes(email), `the admin page does not list ${email}`);
      }
      await shot('admin');
    });

    check(pageErrors.length === 0, `errors in the page: ${pageErrors.join(' | ')}`);
    check(dialogs.length === 0, `dialogs fired: ${dialogs}`);
  } finally {
    await browser.close();
  }
}

main().then(
  () => {
    console.log(`${steps.length} passed, 0 failed`);
    process.exit(0);
  },
  (error) => {
    if (failures === 0) console.error(`not ok - ${error.message}`);
    console.log(`${steps.length} passed, 1 failed`);
    process.exit(1);
  },
);
