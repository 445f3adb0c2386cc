// Wharf dashboard: an app's deploys. How to push (git and `wharf deploy`), the builds with
// their status, and a build's output, live while it runs.

import * as api from '../api.js';
import { h, notice, path, replace, timeAgo } from '../dom.js';
import { outputView } from '../output.js';

/** How often the build list is read again while a build runs. */
const BUILD_REFRESH_MS = 5000;

function howToPush(app) {
  const gitUrl = app.git_url || `<your Wharf server>/${app.name}.git`;
  return h(
    'section',
    { class: 'card' },
    h('h2', null, 'Deploy with git'),
    h('p', null, 'Add the app as a git remote once, then push a branch to build and release it:'),
    h('pre', { class: 'terminal' }, `git remote add wharf ${gitUrl}\ngit push wharf main`),
    h('p', null, 'Or build the current directory without git:'),
    h('pre', { class: 'terminal' }, `wharf deploy -a ${app.name}`),
  );
}

function statusBadge(status) {
  return h('span', { class: `state state-${status}` }, status);
}

function buildRow(build, signal) {
  const outputSlot = h('div', { class: 'build-output' });
  let open = false;
  let controller = null;
  const toggle = h('button', { type: 'button', class: 'button-quiet' }, 'Show output');
  const show = () => {
    open = !open;
    toggle.textContent = open ? 'Hide output' : 'Show output';
    if (controller) controller.abort();
    controller = null;
    if (open) {
      controller = new AbortController();
      signal.addEventListener('abort', () => controller && controller.abort());
      replace(outputSlot, outputView(build.output_stream_url, controller.signal));
    } else {
      replace(outputSlot);
    }
  };
  toggle.addEventListener('click', show);
  const version = build.source_blob.version;
  const item = h(
    'li',
    { class: 'build', dataset: { build: build.id, status: build.status } },
    h(
      'div',
      { class: 'build-head' },
      statusBadge(build.status),
      ' ',
      h('strong', null, version ? version.slice(0, 12) : 'build'),
      ' ',
      build.source_blob.version_description || '',
      h('span', { class: 'muted small' }, ' · ', build.user.email, ' · ', build.stack, ' · ', timeAgo(build.created_at)),
      ' ',
      toggle,
    ),
    outputSlot,
  );
  if (build.status === 'pending') show();
  return item;
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading builds…'));
  replace(body, howToPush(app), h('section', { class: 'card' }, h('h2', null, 'Builds'), list));
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));
  let shown = '';
  let rows = new AbortController();
  ctx.onLeave(() => rows.abort());
  const load = async () => {
    try {
      const builds = await api.getRange(path('apps', app.name, 'builds'), 'created_at ..; max=20, order=desc', { signal });
      if (ctx.stale()) return;
      // Redraw only when something changed, so open output views keep reading.
      const key = builds.map((build) => `${build.id}:${build.status}`).join(',');
      if (key !== shown) {
        shown = key;
        rows.abort();
        rows = new AbortController();
        replace(
          list,
          builds.length === 0
            ? h('p', { class: 'empty' }, 'No builds yet.')
            : h('ol', { class: 'build-list' }, builds.map((build) => buildRow(build, rows.signal))),
        );
      }
      if (builds.some((build) => build.status === 'pending')) timer = setTimeout(load, BUILD_REFRESH_MS);
    } catch (error) {
      if (error.name !== 'AbortError' && !ctx.stale()) replace(list, notice('error', error.message));
    }
  };
  await load();
}
