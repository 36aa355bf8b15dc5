// Sign-in: an API token (berth_…), checked with GET /v1/me before it is kept in this browser.
import { ApiError } from '../api.js';
import { h } from '../dom.js';

export function signInForm(message: string | undefined, signIn: (token: string) => Promise<void>): HTMLElement {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'berth_…',
    'aria-describedby': 'token-help',
  });
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card signin-form', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'berth'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'A token made with POST /v1/tokens (an admin’s first token is in the API’s data folder, admin-token). ' +
        'It is kept in this browser until you sign out.',
    ),
    button,
    error,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = '';
    signIn(input.value.trim())
      .catch((err: unknown) => {
        error.textContent =
          err instanceof ApiError && err.status === 401
            ? 'That token was refused (unknown, revoked or expired).'
            : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`;
        input.focus();
      })
      .finally(() => (button.disabled = false));
  });
  return form;
}
