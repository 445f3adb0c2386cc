// Wharf dashboard: an app's overview. Its formation, add-ons, latest activity (the last
// releases) and the facts of the app (URLs, stack, owner).

import * as api from '../api.js';
import { h, notice, path, replace, safeHref, timeAgo } from '../dom.js';

function card(title, ...children) {
  return h('section', { class: 'card' }, h('h2', null, title), children);
}

/** Fills `slot` with what `load()` gives, drawn by `draw`; a failure shows its message. */
async function fill(slot, load, draw, ctx) {
  try {
    const data = await load();
    if (!ctx.stale()) replace(slot, draw(data));
  } catch (error) {
    if (error.name !== 'AbortError' && !ctx.stale()) replace(slot, notice('error', error.message));
  }
}

export function drawFormation(formation) {
  if (formation.length === 0) {
    return h('p', { class: 'empty' }, 'No process types yet: deploy code with a Procfile or a web process.');
  }
  return h(
    'ul',
    { class: 'plain-list' },
    formation
      .slice()
      .sort((a, b) => a.type.localeCompare(b.type))
      .map((process) =>
        h(
          'li',
          { dataset: { type: process.type } },
          h('strong', null, process.type),
          ` ${process.quantity} × ${process.size} `,
          h('code', { class: 'muted' }, process.command),
        ),
      ),
  );
}

export function drawAddons(addons) {
  if (addons.length === 0) return h('p', { class: 'empty' }, 'No add-ons.');
  return h(
    'ul',
    { class: 'plain-list' },
    addons.map((addon) =>
      h(
        'li',
        null,
        addon.web_url ? h('a', { href: safeHref(addon.web_url), target: '_blank', rel: 'noopener noreferrer' }, addon.name) : h('strong', null, addon.name),
        ` ${addon.plan.name} `,
        h('span', { class: `badge badge-${addon.state}` }, addon.state),
      ),
    ),
  );
}

function drawActivity(releases, base) {
  if (releases.length === 0) return h('p', { class: 'empty' }, 'No releases yet.');
  return [
    h(
      'ol',
      { class: 'activity-list' },
      releases.map((release) =>
        h(
          'li',
          null,
          h('span', { class: 'version' }, `v${release.version}`),
          ' ',
          release.description,
          h('div', { class: 'muted small' }, release.user.email, ' · ', timeAgo(release.created_at)),
        ),
      ),
    ),
    h('a', { href: `${base}/activity` }, 'All activity →'),
  ];
}

/** `512 KB`, `12.3 MB`. */
function bytes(count) {
  if (count < 1024 * 1024) return `${Math.max(1, Math.round(count / 1024))} KB`;
  return `${(count / 1048576).toFixed(1)} MB`;
}

function facts(app) {
  const rows = [
    ['Web URL', app.web_url ? h('a', { href: safeHref(app.web_url), target: '_blank', rel: 'noopener noreferrer' }, app.web_url) : '—'],
    ['Git URL', app.git_url ? h('code', null, app.git_url) : '—'],
    ['Owner', app.owner.email],
    ['Stack', app.stack.name + (app.build_stack.name !== app.stack.name ? ` (next build: ${app.build_stack.name})` : '')],
    ['Region', app.region.name],
    ['Framework', app.buildpack_provided_description || '—'],
    ['Slug size', app.slug_size ? bytes(app.slug_size) : '—'],
    ['Created', timeAgo(app.created_at)],
  ];
  return h('dl', { class: 'facts' }, rows.map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const base = `#/apps/${encodeURIComponent(app.name)}`;
  const formation = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const addons = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const activity = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  replace(
    body,
    h(
      'div',
      { class: 'grid-2' },
      h(
        'div',
        null,
        card('Dyno formation', formation, h('a', { href: `${base}/resources` }, 'Configure dynos →')),
        card('Add-ons', addons),
        card('About', facts(app)),
      ),
      card('Latest activity', activity),
    ),
  );
  await Promise.all([
    fill(formation, () => api.get(path('apps', app.name, 'formation'), { signal }), drawFormation, ctx),
    fill(addons, () => api.get(path('apps', app.name, 'addons'), { signal }), drawAddons, ctx),
    fill(
      activity,
      () => api.getRange(path('apps', app.name, 'releases'), 'version ..; max=5, order=desc', { signal }),
      (releases) => drawActivity(releases, base),
      ctx,
    ),
  ]);
}
