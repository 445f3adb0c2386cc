// Wharf dashboard: the apps page. Every app the user may see, in one call to
// /app-summaries: web URL, formation (`web 2 × Basic`, asleep/awake for Eco), last release and
// its age; a search box that filters as you type; a form to create an app.

import * as api from '../api.js';
import { h, notice, path, replace, safeHref, timeAgo } from '../dom.js';

/** `web 2 × Basic · worker 1 × Eco (asleep)`, or "no dynos". */
export function formationSummary(formation, sleeping) {
  const running = (formation || []).filter((process) => process.quantity > 0);
  if (running.length === 0) return 'no dynos';
  return running
    .map((process) => {
      let text = `${process.type} ${process.quantity} × ${process.size}`;
      if (process.size === 'Eco' && sleeping !== null && sleeping !== undefined) {
        text += sleeping ? ' (asleep)' : ' (awake)';
      }
      return text;
    })
    .join(' · ');
}

function appRow(app) {
  const release = app.last_release;
  return h(
    'tr',
    { class: 'app-row', dataset: { app: app.name } },
    h(
      'td',
      null,
      h('a', { class: 'app-link', href: `#/apps/${encodeURIComponent(app.name)}` }, app.name),
      app.maintenance ? h('span', { class: 'badge badge-warn' }, 'maintenance') : null,
      h('div', { class: 'muted small' }, app.owner),
    ),
    h(
      'td',
      null,
      app.web_url
        ? h('a', { href: safeHref(app.web_url), target: '_blank', rel: 'noopener noreferrer' }, app.web_url)
        : h('span', { class: 'muted' }, '—'),
    ),
    h('td', { class: 'formation' }, formationSummary(app.formation, app.sleeping)),
    h(
      'td',
      null,
      release
        ? [h('span', { title: release.description }, `v${release.version}`), ' · ', timeAgo(release.created_at)]
        : h('span', { class: 'muted' }, 'never released'),
    ),
  );
}

function createForm(ctx, message) {
  const name = h('input', {
    type: 'text',
    name: 'name',
    id: 'new-app-name',
    placeholder: 'leave empty for a generated name',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const submit = h('button', { type: 'submit', class: 'button-primary' }, 'Create app');
  const form = h(
    'form',
    { class: 'inline-form create-app', hidden: true },
    h('label', { for: 'new-app-name' }, 'App name'),
    name,
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const body = name.value.trim() ? { name: name.value.trim() } : {};
    try {
      const app = await api.post('/apps', body, { signal: ctx.signal });
      ctx.navigate(`#/apps/${encodeURIComponent(app.name)}`);
    } catch (error) {
      if (error.name === 'AbortError') return;
      replace(message, notice('error', error.message));
      submit.disabled = false;
    }
  });
  return { form, name };
}

export async function render(body, ctx) {
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const { form, name } = createForm(ctx, message);
  const openCreate = h(
    'button',
    {
      type: 'button',
      class: 'button-primary',
      id: 'new-app',
      onclick: () => {
        form.hidden = !form.hidden;
        if (!form.hidden) name.focus();
      },
    },
    'New app',
  );
  const search = h('input', {
    type: 'search',
    id: 'app-search',
    placeholder: 'Filter apps',
    'aria-label': 'Filter apps',
    autocomplete: 'off',
  });
  const list = h('div', { class: 'app-list' }, h('p', { class: 'muted' }, 'Loading apps…'));
  replace(
    body,
    h('div', { class: 'page-title' }, h('h1', null, 'Apps'), openCreate),
    form,
    message,
    search,
    list,
  );

  const apps = await api.get(path('app-summaries'), { signal: ctx.signal });
  if (ctx.stale()) return;
  apps.sort((a, b) => a.name.localeCompare(b.name));
  if (apps.length === 0) {
    replace(list, h('p', { class: 'empty' }, 'You have no apps yet. Create one, then ', h('code', null, 'git push'), ' to it.'));
    return;
  }
  const rows = apps.map(appRow);
  const none = h('p', { class: 'empty', hidden: true }, 'No app matches.');
  replace(
    list,
    h(
      'table',
      { class: 'table apps-table' },
      h('thead', null, h('tr', null, h('th', null, 'App'), h('th', null, 'Web URL'), h('th', null, 'Dynos'), h('th', null, 'Last release'))),
      h('tbody', null, rows),
    ),
    none,
  );
  const filter = () => {
    const needle = search.value.trim().toLowerCase();
    let shown = 0;
    apps.forEach((app, index) => {
      const match = !needle || app.name.toLowerCase().includes(needle);
      rows[index].hidden = !match;
      if (match) shown += 1;
    });
    none.hidden = shown > 0;
  };
  search.addEventListener('input', filter);
  filter();
}
