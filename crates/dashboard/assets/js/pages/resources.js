// Wharf dashboard: an app's resources. The formation (size and quantity per process type,
// saved in one PATCH as `ps:scale` sends it), the dynos with their state and age (refreshed
// while the page is open) and their restart buttons, and the add-ons with their plans.

import * as api from '../api.js';
import { confirmButton, h, notice, path, replace, timeAgo } from '../dom.js';
import { drawAddons } from './overview.js';

/** How often the dyno list is read again while the page is open. */
const DYNO_REFRESH_MS = 4000;

function formationEditor(app, formation, sizes, ctx, refreshDynos) {
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  if (formation.length === 0) {
    return h('p', { class: 'empty' }, 'No process types yet: deploy code with a Procfile first.');
  }
  const rows = formation
    .slice()
    .sort((a, b) => a.type.localeCompare(b.type))
    .map((process) => {
      const names = sizes.map((size) => size.name);
      if (!names.includes(process.size)) names.unshift(process.size);
      const size = h(
        'select',
        { name: `size-${process.type}`, 'aria-label': `Size of ${process.type} dynos` },
        names.map((name) => h('option', { value: name, selected: name === process.size }, name)),
      );
      const quantity = h('input', {
        type: 'text',
        inputmode: 'numeric',
        class: 'quantity',
        name: `quantity-${process.type}`,
        'aria-label': `Number of ${process.type} dynos`,
        value: String(process.quantity),
        autocomplete: 'off',
      });
      const row = h(
        'tr',
        { dataset: { type: process.type } },
        h('td', null, h('strong', null, process.type)),
        h('td', null, h('code', null, process.command)),
        h('td', null, size),
        h('td', null, quantity),
      );
      return { process, row, size, quantity };
    });
  const save = h('button', { type: 'submit', class: 'button-primary', id: 'save-formation' }, 'Save');
  const form = h(
    'form',
    { class: 'formation-form' },
    h(
      'table',
      { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Type'), h('th', null, 'Command'), h('th', null, 'Size'), h('th', null, 'Quantity'))),
      h('tbody', null, rows.map((r) => r.row)),
    ),
    h('div', { class: 'form-actions' }, save),
    message,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const updates = [];
    for (const { process, size, quantity } of rows) {
      const update = { type: process.type };
      const wanted = quantity.value.trim();
      // The field holds an absolute number (`-1` is a mistake, not "one fewer"); other text
      // goes as typed, so `+1` scales up and nonsense gets the API's own message.
      if (wanted !== String(process.quantity)) update.quantity = /^-?\d+$/.test(wanted) ? Number(wanted) : wanted;
      if (size.value !== process.size) update.size = size.value;
      if (Object.keys(update).length > 1) updates.push(update);
    }
    if (updates.length === 0) {
      replace(message, notice('info', 'Nothing changed.'));
      return;
    }
    save.disabled = true;
    replace(message);
    try {
      const result = await api.patch(path('apps', app.name, 'formation'), { updates }, { signal: ctx.signal });
      for (const entry of rows) {
        const now = result.find((process) => process.type === entry.process.type);
        if (now) {
          entry.process = now;
          entry.quantity.value = String(now.quantity);
          entry.size.value = now.size;
        }
      }
      const summary = updates
        .map((u) => result.find((p) => p.type === u.type))
        .filter(Boolean)
        .map((p) => `${p.type} at ${p.quantity}:${p.size}`)
        .join(', ');
      replace(message, notice('ok', `Scaled: now running ${summary}.`));
      refreshDynos();
    } catch (error) {
      if (error.name !== 'AbortError') replace(message, notice('error', error.message));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function dynoTable(app, dynos, ctx, after) {
  const act = (run) => async () => {
    try {
      await run();
      after(null);
    } catch (error) {
      if (error.name !== 'AbortError') after(error);
    }
  };
  if (dynos.length === 0) return h('p', { class: 'empty' }, 'No dynos are running.');
  const types = [...new Set(dynos.map((dyno) => dyno.type))].sort();
  return [
    h(
      'table',
      { class: 'table dynos-table' },
      h('thead', null, h('tr', null, h('th', null, 'Dyno'), h('th', null, 'State'), h('th', null, 'Size'), h('th', null, 'Release'), h('th', null, 'Command'), h('th', null, ''))),
      h(
        'tbody',
        null,
        dynos
          .slice()
          .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
          .map((dyno) =>
            h(
              'tr',
              { dataset: { dyno: dyno.name, state: dyno.state } },
              h('td', null, h('strong', null, dyno.name)),
              h('td', null, h('span', { class: `state state-${dyno.state}` }, dyno.state), ' ', timeAgo(dyno.updated_at)),
              h('td', null, dyno.size),
              h('td', null, `v${dyno.release.version}`),
              h('td', null, h('code', null, dyno.command)),
              h(
                'td',
                null,
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'button-quiet',
                    onclick: act(() => api.del(path('apps', app.name, 'dynos', dyno.name), { signal: ctx.signal })),
                  },
                  'Restart',
                ),
              ),
            ),
          ),
      ),
    ),
    h(
      'div',
      { class: 'form-actions' },
      types.map((type) =>
        confirmButton(`Restart all ${type} dynos`, `Restart every ${type} dyno?`, act(() => api.del(path('apps', app.name, 'formations', type), { signal: ctx.signal }))),
      ),
      confirmButton('Restart all dynos', `Restart every dyno of ${app.name}?`, act(() => api.del(path('apps', app.name, 'dynos'), { signal: ctx.signal })), { danger: true }),
    ),
  ];
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const formationSlot = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const dynoSlot = h('div', { id: 'dynos' }, h('p', { class: 'muted' }, 'Loading…'));
  const dynoMessage = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const addonSlot = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  replace(
    body,
    h('section', { class: 'card' }, h('h2', null, 'Dyno formation'), formationSlot),
    h('section', { class: 'card' }, h('h2', null, 'Dynos'), dynoMessage, dynoSlot),
    h('section', { class: 'card' }, h('h2', null, 'Add-ons'), addonSlot),
  );

  let timer = null;
  let loading = false;
  const refreshDynos = async () => {
    if (loading || ctx.stale()) return;
    loading = true;
    try {
      const dynos = await api.get(path('apps', app.name, 'dynos'), { signal });
      if (!ctx.stale()) {
        replace(
          dynoSlot,
          dynoTable(app, dynos, ctx, (error) => {
            replace(dynoMessage, error ? notice('error', error.message) : notice('ok', 'Restarting.'));
            refreshDynos();
          }),
        );
      }
    } catch (error) {
      if (error.name !== 'AbortError' && !ctx.stale()) replace(dynoMessage, notice('error', error.message));
    } finally {
      loading = false;
    }
  };
  timer = setInterval(refreshDynos, DYNO_REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));

  const [formation, sizes] = await Promise.all([
    api.get(path('apps', app.name, 'formation'), { signal }),
    api.get('/dyno-sizes', { signal }),
  ]);
  if (ctx.stale()) return;
  replace(formationSlot, formationEditor(app, formation, sizes, ctx, refreshDynos));
  await refreshDynos();
  try {
    const addons = await api.get(path('apps', app.name, 'addons'), { signal });
    if (!ctx.stale()) replace(addonSlot, drawAddons(addons));
  } catch (error) {
    if (error.name !== 'AbortError' && !ctx.stale()) replace(addonSlot, notice('error', error.message));
  }
}
