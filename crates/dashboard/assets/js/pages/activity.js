// Wharf dashboard: an app's activity, the release ledger newest first (version, description,
// who, when, status), release-phase output, and "Roll back to here" after a confirmation.

import * as api from '../api.js';
import { confirmButton, h, notice, path, replace, timeAgo } from '../dom.js';
import { outputView } from '../output.js';

const PAGE = 'version ..; max=50, order=desc';

function releaseItem(app, release, ctx, after) {
  const outputSlot = h('div', { class: 'release-output' });
  const actions = [];
  if (release.output_stream_url) {
    let controller = null;
    const toggle = h('button', { type: 'button', class: 'button-quiet' }, 'Release output');
    toggle.addEventListener('click', () => {
      if (controller) {
        controller.abort();
        controller = null;
        replace(outputSlot);
        return;
      }
      controller = new AbortController();
      ctx.signal.addEventListener('abort', () => controller && controller.abort());
      replace(outputSlot, outputView(release.output_stream_url, controller.signal));
    });
    actions.push(toggle);
  }
  if (!release.current && release.eligible_for_rollback) {
    actions.push(
      confirmButton(
        'Roll back to here',
        `Roll back ${app.name} to v${release.version}? A new release runs v${release.version}'s code and config.`,
        async () => {
          try {
            const made = await api.post(path('apps', app.name, 'releases'), { release: release.id }, { signal: ctx.signal });
            after(notice('ok', `Rolled back to v${release.version}: now at v${made.version}.`));
          } catch (error) {
            if (error.name !== 'AbortError') after(notice('error', error.message));
          }
        },
        { attrs: { class: 'button rollback' } },
      ),
    );
  }
  return h(
    'li',
    { class: 'release', dataset: { version: String(release.version), status: release.status } },
    h(
      'div',
      { class: 'release-head' },
      h('span', { class: 'version' }, `v${release.version}`),
      release.current ? h('span', { class: 'badge badge-ok' }, 'current') : null,
      release.status !== 'succeeded' ? h('span', { class: `state state-${release.status}` }, release.status) : null,
      h('span', { class: 'description' }, release.description),
      h('span', { class: 'muted small' }, release.user.email, ' · ', timeAgo(release.created_at)),
      h('span', { class: 'release-actions' }, actions),
    ),
    outputSlot,
  );
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const list = h('ol', { class: 'release-list' });
  const more = h('div', { class: 'form-actions' });
  replace(body, h('section', { class: 'card' }, h('h2', null, 'Activity'), message, list, more));

  const load = async (range, clear) => {
    const { data, headers } = await api.request('GET', path('apps', app.name, 'releases'), { signal, headers: { Range: range } });
    if (ctx.stale()) return;
    if (clear) replace(list);
    if (clear && data.length === 0) list.append(h('li', { class: 'empty' }, 'No releases yet.'));
    for (const release of data) {
      list.append(
        releaseItem(app, release, ctx, (note) => {
          replace(message, note);
          load(PAGE, true).catch((error) => {
            if (error.name !== 'AbortError') replace(message, notice('error', error.message));
          });
        }),
      );
    }
    const next = headers.get('Next-Range');
    replace(
      more,
      next
        ? h(
            'button',
            {
              type: 'button',
              class: 'button',
              onclick: () =>
                load(next, false).catch((error) => {
                  if (error.name !== 'AbortError') replace(message, notice('error', error.message));
                }),
            },
            'Older releases',
          )
        : null,
    );
  };
  await load(PAGE, true);
}
