// Wharf dashboard: start-up and the hash router. Restores the session, draws the top bar and
// an app's tabs, loads each page's module on first use, and tears a page down (timers,
// streams) when the user leaves it.

import * as api from './api.js';
import { h, replace, notice } from './dom.js';

const APP_TABS = [
  ['', 'Overview'],
  ['resources', 'Resources'],
  ['deploy', 'Deploy'],
  ['metrics', 'Metrics'],
  ['activity', 'Activity'],
  ['logs', 'Logs'],
  ['access', 'Access'],
  ['settings', 'Settings'],
];

const PAGES = {
  login: () => import('./pages/login.js'),
  apps: () => import('./pages/apps.js'),
  admin: () => import('./pages/admin.js'),
  '': () => import('./pages/overview.js'),
  resources: () => import('./pages/resources.js'),
  deploy: () => import('./pages/deploy.js'),
  metrics: () => import('./pages/metrics.js'),
  activity: () => import('./pages/activity.js'),
  logs: () => import('./pages/logs.js'),
  access: () => import('./pages/access.js'),
  settings: () => import('./pages/settings.js'),
};

const top = document.getElementById('top');
const main = document.getElementById('main');

/** What to show on the login page once (why the user landed there). */
let flash = null;
/** Where to go after logging in. */
let afterLogin = '#/apps';
/** Cleanups of the page on screen, and a counter that makes stale renders give up. */
let current = { controller: new AbortController(), cleanups: [] };
let generation = 0;

export function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

/** `#/apps/NAME/tab` → `{page, app, tab}`. */
function parseHash(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts.length === 0) return { page: 'apps' };
  if (parts[0] === 'apps' && parts.length >= 2) {
    let app;
    try {
      app = decodeURIComponent(parts[1]);
    } catch {
      return { page: 'missing' };
    }
    const tab = parts[2] || '';
    if (parts.length > 3 || !APP_TABS.some(([name]) => name === tab)) return { page: 'missing' };
    return { page: 'app', app, tab };
  }
  if (parts.length === 1 && ['apps', 'login', 'admin'].includes(parts[0])) return { page: parts[0] };
  return { page: 'missing' };
}

function leavePage() {
  current.controller.abort();
  for (const cleanup of current.cleanups) {
    try {
      cleanup();
    } catch (error) {
      console.error('page cleanup failed', error);
    }
  }
  current = { controller: new AbortController(), cleanups: [] };
}

function drawTop() {
  const who = api.session();
  const links = who
    ? [
        h('a', { href: '#/apps' }, 'Apps'),
        who.admin ? h('a', { href: '#/admin' }, 'Admin') : null,
      ]
    : [];
  replace(
    top,
    h('a', { class: 'brand', href: '#/apps' }, h('span', { class: 'brand-mark' }, '⚓'), 'Wharf'),
    h('nav', { class: 'top-nav', 'aria-label': 'Main' }, links),
    who
      ? h(
          'div',
          { class: 'who' },
          h('span', { class: 'who-email' }, who.email),
          h('button', { type: 'button', class: 'button-quiet', onclick: logOut }, 'Log out'),
        )
      : null,
  );
}

async function logOut(event) {
  event.currentTarget.disabled = true;
  try {
    await api.del('/session');
  } catch (error) {
    // The session may already be gone: the login page is the right place either way.
    if (error.status !== 401) console.warn('log out', error);
  }
  api.setSession(null);
  flash = { kind: 'info', message: 'You are logged out.' };
  navigate('#/login');
}

function appShell(app, tab) {
  const base = `#/apps/${encodeURIComponent(app.name)}`;
  return h(
    'div',
    { class: 'app-head' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/apps' }, 'Apps'), ' › ', app.name),
    h(
      'div',
      { class: 'app-title' },
      h('h1', null, app.name),
      app.maintenance ? h('span', { class: 'badge badge-warn' }, 'maintenance') : null,
      app.web_url
        ? h('a', { class: 'button', href: app.web_url, target: '_blank', rel: 'noopener noreferrer' }, 'Open app')
        : null,
    ),
    h(
      'nav',
      { class: 'tabs', 'aria-label': 'App' },
      APP_TABS.map(([name, label]) =>
        h(
          'a',
          {
            href: name ? `${base}/${name}` : base,
            'aria-current': name === tab ? 'page' : null,
            dataset: { tab: name || 'overview' },
          },
          label,
        ),
      ),
    ),
  );
}

function notFound(message) {
  return h(
    'section',
    { class: 'empty-page' },
    h('h1', null, 'Not found'),
    h('p', null, message),
    h('p', null, h('a', { href: '#/apps' }, 'Back to your apps')),
  );
}

async function route() {
  leavePage();
  const mine = ++generation;
  const { controller, cleanups } = current;
  const stale = () => mine !== generation;
  const hash = window.location.hash;
  const target = parseHash(hash);
  drawTop();
  if (target.page === 'login') {
    if (api.session()) return navigate('#/apps');
  } else if (!api.session()) {
    afterLogin = hash || '#/apps';
    return navigate('#/login');
  }
  main.setAttribute('aria-busy', 'true');
  delete main.dataset.rendered;
  try {
    await show(target, { signal: controller.signal, onLeave: (cleanup) => cleanups.push(cleanup), navigate, stale });
  } catch (error) {
    if (stale() || error.name === 'AbortError' || error.status === 401) return;
    console.error(error);
    replace(main, notice('error', error.message || String(error)));
  } finally {
    if (!stale()) {
      main.removeAttribute('aria-busy');
      // Which route the page on screen shows (the browser tests wait on it).
      main.dataset.rendered = hash;
    }
  }
}

/** Draws the page `target` names into `main`. */
async function show(target, ctx) {
  const { stale, signal } = ctx;
  if (target.page === 'missing') {
    document.title = 'Not found · Wharf';
    replace(main, notFound('There is no such page in the dashboard.'));
    return;
  }
  if (target.page === 'app') {
    let app;
    try {
      app = await api.get(`/apps/${encodeURIComponent(target.app)}`, { signal });
    } catch (error) {
      if (stale() || error.name === 'AbortError' || error.status === 401) throw error;
      document.title = 'App not found · Wharf';
      replace(main, error.status === 404 ? notFound(`App not found: ${error.message}`) : notice('error', error.message));
      return;
    }
    const module = await PAGES[target.tab]();
    if (stale()) return;
    const label = APP_TABS.find(([name]) => name === target.tab)[1];
    document.title = `${app.name} · ${label} · Wharf`;
    const body = h('div', { class: 'tab-body' });
    replace(main, appShell(app, target.tab), body);
    await module.render(body, { ...ctx, app });
    return;
  }
  const module = await PAGES[target.page]();
  if (stale()) return;
  document.title = `${target.page[0].toUpperCase()}${target.page.slice(1)} · Wharf`;
  const body = h('div', { class: 'page-body' });
  replace(main, body);
  const pageFlash = flash;
  flash = null;
  await module.render(body, {
    ...ctx,
    flash: pageFlash,
    loggedIn: (who) => {
      api.setSession(who);
      const next = afterLogin;
      afterLogin = '#/apps';
      navigate(next === '#/login' ? '#/apps' : next);
    },
  });
}

api.onSessionEnded((message) => {
  flash = { kind: 'error', message };
  if (!window.location.hash.startsWith('#/login')) afterLogin = window.location.hash;
  navigate('#/login');
});

async function start() {
  try {
    const { data } = await api.request('GET', '/session', { own401: true });
    api.setSession(data);
  } catch (error) {
    api.setSession(null);
    if (error.status !== 401) flash = { kind: 'error', message: error.message };
  }
  window.addEventListener('hashchange', route);
  if (!window.location.hash) {
    window.history.replaceState(null, '', '#/apps');
  }
  route();
}

start();
