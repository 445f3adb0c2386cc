// Wharf dashboard: the admin page. Lists every user (GET /users) and creates one (POST /users),
// showing their API key once.

import * as api from '../api.js';
import { h, notice, replace, timeAgo } from '../dom.js';

export async function render(body, ctx) {
  const who = api.session();
  if (!who || !who.admin) {
    replace(body, h('h1', null, 'Admin'), notice('error', 'Only admins can see this page.'));
    return;
  }
  const users = h('div', { id: 'users' }, h('p', { class: 'muted' }, 'Loading…'));
  const loadUsers = async () => {
    try {
      const accounts = await api.get('/users', { signal: ctx.signal });
      if (ctx.stale && ctx.stale()) return;
      replace(
        users,
        h(
          'table',
          { class: 'table' },
          h('thead', null, h('tr', null, h('th', null, 'User'), h('th', null, 'Role'), h('th', null, 'Since'))),
          h(
            'tbody',
            null,
            accounts.map((account) =>
              h(
                'tr',
                { dataset: { email: account.email } },
                h('td', null, account.email),
                h('td', null, account.admin ? 'admin' : 'user'),
                h('td', null, timeAgo(account.created_at)),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      if (error.name !== 'AbortError') replace(users, notice('error', error.message));
    }
  };
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const created = h('div');
  const email = h('input', { type: 'email', id: 'new-user-email', placeholder: 'someone@example.com', autocomplete: 'off' });
  const submit = h('button', { type: 'submit', class: 'button-primary' }, 'Create user');
  const form = h('form', { class: 'inline-form' }, h('label', { for: 'new-user-email' }, 'E-mail'), email, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const address = email.value.trim();
    if (!address) {
      replace(message, notice('error', "Enter the new user's e-mail address."));
      return;
    }
    submit.disabled = true;
    replace(message);
    try {
      const result = await api.post('/users', { email: address }, { signal: ctx.signal });
      email.value = '';
      loadUsers();
      replace(
        created,
        h(
          'div',
          { class: 'card created-user' },
          h('p', null, 'Created ', h('strong', null, result.account.email), '. Their API key, shown only this once:'),
          h('pre', { class: 'terminal api-key' }, result.api_key),
          h('p', { class: 'muted' }, 'Hand it over safely: with it and the e-mail address they log in here or with ', h('code', null, 'wharf login'), '.'),
        ),
      );
    } catch (error) {
      if (error.name !== 'AbortError') replace(message, notice('error', error.message));
    } finally {
      submit.disabled = false;
    }
  });
  replace(
    body,
    h('h1', null, 'Admin'),
    h('section', { class: 'card' }, h('h2', null, 'Create a user'), form, message, created),
    h('section', { class: 'card' }, h('h2', null, 'Users'), users),
  );
  await loadUsers();
}
