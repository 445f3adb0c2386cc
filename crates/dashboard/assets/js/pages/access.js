// Wharf dashboard: who may use an app. Its owner and collaborators; add one by e-mail,
// remove one (as `wharf access:add` and `access:remove` do).

import * as api from '../api.js';
import { confirmButton, h, notice, path, replace, timeAgo } from '../dom.js';

export async function render(body, ctx) {
  const { app, signal } = ctx;
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const email = h('input', { type: 'email', id: 'collaborator-email', name: 'email', placeholder: 'someone@example.com', autocomplete: 'off' });
  const add = h('button', { type: 'submit', class: 'button-primary' }, 'Add collaborator');
  const form = h('form', { class: 'inline-form' }, h('label', { for: 'collaborator-email' }, 'E-mail'), email, add);
  replace(
    body,
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Access'),
      h('p', null, 'Owner: ', h('strong', null, app.owner.email)),
      form,
      message,
      list,
    ),
  );

  const load = async () => {
    const collaborators = await api.get(path('apps', app.name, 'collaborators'), { signal });
    if (ctx.stale()) return;
    const others = collaborators.filter((c) => c.user.email !== app.owner.email);
    replace(
      list,
      others.length === 0
        ? h('p', { class: 'empty' }, 'No collaborators.')
        : h(
            'table',
            { class: 'table' },
            h('thead', null, h('tr', null, h('th', null, 'Collaborator'), h('th', null, 'Added'), h('th', null, ''))),
            h(
              'tbody',
              null,
              others.map((collaborator) =>
                h(
                  'tr',
                  { dataset: { email: collaborator.user.email } },
                  h('td', null, collaborator.user.email),
                  h('td', null, timeAgo(collaborator.created_at)),
                  h(
                    'td',
                    null,
                    confirmButton('Remove', `Remove ${collaborator.user.email} from ${app.name}?`, async () => {
                      try {
                        await api.del(path('apps', app.name, 'collaborators', collaborator.user.email), { signal });
                        replace(message, notice('ok', `Removed ${collaborator.user.email}.`));
                        await load();
                      } catch (error) {
                        if (error.name !== 'AbortError') replace(message, notice('error', error.message));
                      }
                    }, { danger: true }),
                  ),
                ),
              ),
            ),
          ),
    );
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const user = email.value.trim();
    if (!user) {
      replace(message, notice('error', 'Enter the e-mail address of a Wharf user.'));
      return;
    }
    add.disabled = true;
    try {
      await api.post(path('apps', app.name, 'collaborators'), { user }, { signal });
      replace(message, notice('ok', `Added ${user} as a collaborator.`));
      email.value = '';
      await load();
    } catch (error) {
      if (error.name !== 'AbortError') replace(message, notice('error', error.message));
    } finally {
      add.disabled = false;
    }
  });
  await load();
}
