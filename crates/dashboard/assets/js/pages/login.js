// Wharf dashboard: the login page. E-mail and API key (as `wharf login` takes them) are
// posted to /session; the server answers with an HttpOnly cookie and the CSRF token.

import * as api from '../api.js';
import { h, notice, replace } from '../dom.js';

export async function render(body, ctx) {
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  if (ctx.flash) replace(message, notice(ctx.flash.kind, ctx.flash.message));
  const email = h('input', {
    type: 'email',
    name: 'email',
    id: 'login-email',
    autocomplete: 'username',
    required: true,
    autofocus: true,
  });
  const key = h('input', {
    type: 'password',
    name: 'api_key',
    id: 'login-key',
    autocomplete: 'current-password',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'button-primary' }, 'Log in');
  const form = h(
    'form',
    { class: 'login-form', novalidate: true },
    h('h1', null, 'Log in to Wharf'),
    message,
    h('label', { for: 'login-email' }, 'E-mail'),
    email,
    h('label', { for: 'login-key' }, 'API key'),
    key,
    h('p', { class: 'hint' }, 'The same key ', h('code', null, 'wharf login'), ' asks for: an admin hands it to you when your account is made.'),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!email.value.trim() || !key.value) {
      replace(message, notice('error', 'Enter your e-mail address and your API key.'));
      return;
    }
    submit.disabled = true;
    replace(message);
    try {
      const { data } = await api.request('POST', '/session', {
        body: { email: email.value.trim(), api_key: key.value },
        own401: true,
      });
      ctx.loggedIn(data);
    } catch (error) {
      replace(message, notice('error', error.message));
      submit.disabled = false;
      key.select();
    }
  });
  replace(body, h('section', { class: 'login' }, form));
  email.focus();
}
