// Wharf dashboard: an app's settings. Config vars (hidden until revealed; a change the API
// refuses is refused whole, with its message), buildpacks, stack, maintenance mode, domains,
// SNI certificates, rename, and delete with the app's name typed to confirm.

import * as api from '../api.js';
import { confirmButton, h, notice, path, replace, timeAgo } from '../dom.js';

function section(title, ...children) {
  return h('section', { class: 'card settings-section' }, h('h2', null, title), children);
}

/** Runs `action`, then shows its result (or the API's message) in `message`. */
async function attempt(message, action, ok) {
  try {
    const result = await action();
    if (ok) replace(message, notice('ok', typeof ok === 'function' ? ok(result) : ok));
    return result;
  } catch (error) {
    if (error.name !== 'AbortError') replace(message, notice('error', error.message));
    return undefined;
  }
}

function configVars(app, ctx) {
  const { signal } = ctx;
  const message = h('div', { class: 'form-message', id: 'config-message', 'aria-live': 'polite' });
  const slot = h('div', { class: 'config-vars' });
  const url = path('apps', app.name, 'config-vars');
  const change = (changes, ok) =>
    attempt(message, async () => {
      const vars = await api.patch(url, changes, { signal });
      draw(vars);
    }, ok);

  const row = (key, value) => {
    const input = h('input', { type: 'text', class: 'config-value', value, 'aria-label': `Value of ${key}`, spellcheck: 'false', autocomplete: 'off' });
    const save = h('button', { type: 'submit', class: 'button' }, 'Save');
    const form = h('form', { class: 'config-row', dataset: { key } }, h('code', { class: 'config-key' }, key), input, save);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      change({ [key]: input.value }, `Set ${key}.`);
    });
    return h(
      'li',
      null,
      form,
      confirmButton('Remove', `Remove ${key}?`, () => change({ [key]: null }, `Removed ${key}.`), { danger: true }),
    );
  };

  const addKey = h('input', { type: 'text', id: 'config-add-key', placeholder: 'KEY', 'aria-label': 'New config var name', spellcheck: 'false', autocomplete: 'off' });
  const addValue = h('input', { type: 'text', id: 'config-add-value', placeholder: 'VALUE', 'aria-label': 'New config var value', spellcheck: 'false', autocomplete: 'off' });
  const addForm = h('form', { class: 'config-row config-add' }, addKey, addValue, h('button', { type: 'submit', class: 'button-primary', id: 'config-add' }, 'Add'));
  addForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = addKey.value.trim();
    if (!key) {
      replace(message, notice('error', 'Enter a name for the config var.'));
      return;
    }
    await change({ [key]: addValue.value }, `Set ${key}.`);
    if (message.querySelector('.notice-ok')) {
      addKey.value = '';
      addValue.value = '';
    }
  });

  function draw(vars) {
    const keys = Object.keys(vars).sort();
    replace(
      slot,
      keys.length === 0 ? h('p', { class: 'empty' }, 'No config vars.') : h('ul', { class: 'config-list' }, keys.map((key) => row(key, vars[key]))),
      addForm,
      h('button', { type: 'button', class: 'button-quiet', onclick: hide }, 'Hide config vars'),
    );
  }
  function hide() {
    replace(message);
    replace(slot, reveal);
  }
  const reveal = h('button', { type: 'button', class: 'button', id: 'reveal-config' }, 'Reveal config vars');
  reveal.addEventListener('click', () =>
    attempt(message, async () => {
      draw(await api.get(url, { signal }));
    }),
  );
  replace(slot, reveal);
  return section(
    'Config vars',
    h('p', { class: 'muted' }, 'Each change makes a new release and restarts the dynos.'),
    message,
    slot,
  );
}

function buildpacks(app, ctx) {
  const { signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const url = path('apps', app.name, 'buildpack-installations');
  let current = [];
  const save = (names, ok) =>
    attempt(message, async () => {
      draw(await api.put(url, { updates: names.map((buildpack) => ({ buildpack })) }, { signal }));
    }, ok);
  const draw = (installations) => {
    current = installations.slice().sort((a, b) => a.ordinal - b.ordinal).map((i) => i.buildpack.url);
    replace(
      list,
      current.length === 0
        ? h('p', { class: 'empty' }, 'None set: the buildpack is detected on each build.')
        : h(
            'ol',
            { class: 'plain-list' },
            current.map((buildpack, index) =>
              h(
                'li',
                null,
                h('code', null, buildpack),
                ' ',
                h(
                  'button',
                  { type: 'button', class: 'button-quiet', onclick: () => save(current.filter((_, i) => i !== index), `Removed ${buildpack}.`) },
                  'Remove',
                ),
              ),
            ),
          ),
    );
  };
  const input = h('input', { type: 'text', id: 'buildpack-add', placeholder: 'a built-in name (python) or a URL', spellcheck: 'false', autocomplete: 'off' });
  const form = h('form', { class: 'inline-form' }, input, h('button', { type: 'submit', class: 'button' }, 'Add buildpack'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    save([...current, name], `Added ${name}: it is used from the next build.`).then(() => {
      if (message.querySelector('.notice-ok')) input.value = '';
    });
  });
  attempt(message, async () => draw(await api.get(url, { signal })));
  return section('Buildpacks', message, list, form);
}

function stackAndMaintenance(app, ctx) {
  const { signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const appUrl = path('apps', app.name);
  const select = h('select', { id: 'stack', 'aria-label': 'Stack for the next build' }, h('option', { value: app.build_stack.name }, app.build_stack.name));
  const stackForm = h('form', { class: 'inline-form' }, h('label', { for: 'stack' }, 'Stack'), select, h('button', { type: 'submit', class: 'button' }, 'Set stack'));
  stackForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(message, () => api.patch(appUrl, { build_stack: select.value }, { signal }), (updated) => `The next build runs on ${updated.build_stack.name}: deploy again to use it.`);
  });
  api.get('/stacks', { signal }).then(
    (stacks) => {
      if (ctx.stale()) return;
      replace(select, stacks.map((stack) => h('option', { value: stack.name, selected: stack.name === app.build_stack.name }, `${stack.name}${stack.default ? ' (default)' : ''}`)));
    },
    (error) => {
      if (error.name !== 'AbortError') replace(message, notice('error', error.message));
    },
  );

  let maintenance = app.maintenance;
  const state = h('strong', null);
  const toggle = h('button', { type: 'button', class: 'button', id: 'maintenance-toggle' });
  const drawMaintenance = () => {
    state.textContent = maintenance ? 'on' : 'off';
    toggle.textContent = maintenance ? 'Turn maintenance mode off' : 'Turn maintenance mode on';
  };
  toggle.addEventListener('click', async () => {
    toggle.disabled = true;
    const updated = await attempt(message, () => api.patch(appUrl, { maintenance: !maintenance }, { signal }), (a) => `Maintenance mode is ${a.maintenance ? 'on' : 'off'}.`);
    if (updated) maintenance = updated.maintenance;
    drawMaintenance();
    toggle.disabled = false;
  });
  drawMaintenance();
  return section(
    'Stack and maintenance',
    message,
    stackForm,
    h('p', { class: 'muted' }, 'Running on ', app.stack.name, '.'),
    h('p', null, 'Maintenance mode is ', state, '. While on, the router answers every request with a maintenance page. ', toggle),
  );
}

function domains(app, ctx) {
  const { signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const certs = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const url = path('apps', app.name, 'domains');
  const load = async () => {
    const all = await api.get(url, { signal });
    if (ctx.stale()) return;
    replace(
      list,
      h(
        'table',
        { class: 'table' },
        h('thead', null, h('tr', null, h('th', null, 'Domain'), h('th', null, 'DNS target'), h('th', null, 'Certificate'), h('th', null, ''))),
        h(
          'tbody',
          null,
          all.map((domain) =>
            h(
              'tr',
              { dataset: { hostname: domain.hostname } },
              h('td', null, domain.hostname),
              h('td', null, domain.cname ? h('code', null, domain.cname) : '—'),
              h('td', null, domain.sni_endpoint ? domain.sni_endpoint.name : '—'),
              h(
                'td',
                null,
                domain.kind === 'custom'
                  ? confirmButton('Remove', `Remove ${domain.hostname}?`, async () => {
                      await attempt(message, () => api.del(path('apps', app.name, 'domains', domain.hostname), { signal }), `Removed ${domain.hostname}.`);
                      await load();
                    }, { danger: true })
                  : h('span', { class: 'muted small' }, 'default'),
              ),
            ),
          ),
        ),
      ),
    );
  };
  const input = h('input', { type: 'text', id: 'domain-add', placeholder: 'www.example.com', spellcheck: 'false', autocomplete: 'off' });
  const form = h('form', { class: 'inline-form' }, input, h('button', { type: 'submit', class: 'button' }, 'Add domain'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const hostname = input.value.trim();
    if (!hostname) return;
    const added = await attempt(message, () => api.post(url, { hostname, sni_endpoint: null }, { signal }), (d) => `Added ${d.hostname}: point a CNAME at ${d.cname || 'the server'}.`);
    if (added) {
      input.value = '';
      await load();
    }
  });
  attempt(message, load);
  api.get(path('apps', app.name, 'sni-endpoints'), { signal }).then(
    (endpoints) => {
      if (ctx.stale()) return;
      replace(
        certs,
        endpoints.length === 0
          ? h('p', { class: 'empty' }, 'No certificates: add one with ', h('code', null, `wharf certs:add -a ${app.name}`), '.')
          : h(
              'table',
              { class: 'table' },
              h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Covers'), h('th', null, 'Issuer'), h('th', null, 'Expires'))),
              h(
                'tbody',
                null,
                endpoints.map((endpoint) =>
                  h(
                    'tr',
                    null,
                    h('td', null, endpoint.display_name || endpoint.name),
                    h('td', null, endpoint.ssl_cert.cert_domains.join(', ')),
                    h('td', null, endpoint.ssl_cert.issuer),
                    h('td', null, timeAgo(endpoint.ssl_cert.expires_at)),
                  ),
                ),
              ),
            ),
      );
    },
    (error) => {
      if (error.name !== 'AbortError') replace(certs, notice('error', error.message));
    },
  );
  return [section('Domains', message, list, form), section('SSL certificates', certs)];
}

function renameAndDelete(app, ctx) {
  const { signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const name = h('input', { type: 'text', id: 'rename', value: app.name, spellcheck: 'false', autocomplete: 'off' });
  const rename = h('form', { class: 'inline-form' }, h('label', { for: 'rename' }, 'Name'), name, h('button', { type: 'submit', class: 'button' }, 'Rename'));
  rename.addEventListener('submit', async (event) => {
    event.preventDefault();
    const wanted = name.value.trim();
    if (wanted === app.name) return;
    const updated = await attempt(message, () => api.patch(path('apps', app.name), { name: wanted }, { signal }));
    if (updated) ctx.navigate(`#/apps/${encodeURIComponent(updated.name)}/settings`);
  });

  const confirmName = h('input', { type: 'text', id: 'delete-confirm', placeholder: app.name, spellcheck: 'false', autocomplete: 'off' });
  const destroy = h('button', { type: 'submit', class: 'button-danger', disabled: true }, 'Delete app');
  confirmName.addEventListener('input', () => {
    destroy.disabled = confirmName.value !== app.name;
  });
  const deleteForm = h(
    'form',
    { class: 'inline-form danger-zone' },
    h('label', { for: 'delete-confirm' }, 'Type ', h('code', null, app.name), ' to delete the app, its releases, dynos and add-ons:'),
    confirmName,
    destroy,
  );
  deleteForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (confirmName.value !== app.name) return;
    destroy.disabled = true;
    const done = await attempt(message, async () => {
      await api.del(path('apps', app.name), { signal });
      return true;
    });
    if (done) ctx.navigate('#/apps');
    else destroy.disabled = false;
  });
  return section('Name and deletion', message, rename, deleteForm);
}

export async function render(body, ctx) {
  const { app } = ctx;
  replace(
    body,
    configVars(app, ctx),
    buildpacks(app, ctx),
    stackAndMaintenance(app, ctx),
    domains(app, ctx),
    section('Info', h('p', null, 'Created ', timeAgo(app.created_at), ' by ', app.owner.email, '.')),
    renameAndDelete(app, ctx),
  );
}
