// Wharf dashboard: the API client. Same origin, session cookie, Heroku v3 headers, the CSRF
// token on every request that changes something, errors as ApiError with the API's message,
// any 401 back to the login page, and readers for the streams the API hands out.

const ACCEPT = 'application/vnd.heroku+json; version=3';
export const SESSION_ENDED = 'Your session ended; log in again';

/** The logged-in session: `{email, admin, csrf_token, expires_at}`, or null. */
let current = null;
const endedListeners = [];

export function session() {
  return current;
}

export function setSession(value) {
  current = value;
}

/** `listener(message)` runs when a call finds the session gone (a 401). */
export function onSessionEnded(listener) {
  endedListeners.push(listener);
}

export class ApiError extends Error {
  constructor(status, id, message) {
    super(message);
    this.status = status;
    this.id = id;
  }
}

async function errorFrom(response) {
  let id = 'error';
  let message = `The server answered ${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string') message = body.message;
    if (body && typeof body.id === 'string') id = body.id;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, id, message);
}

/**
 * Calls the API. Resolves to `{data, headers, status}`; rejects with an ApiError carrying the
 * API's message. A 401 ends the session (the login page opens) unless `own401` is set.
 */
export async function request(method, url, { body, headers, signal, own401 } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: ACCEPT, 'Content-Type': 'application/json', ...headers },
    signal,
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (method !== 'GET' && current) init.headers['X-CSRF-Token'] = current.csrf_token;
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'Could not reach the Wharf server. Check your connection and try again.');
  }
  if (response.status === 401 && !own401) {
    current = null;
    for (const listener of endedListeners) listener(SESSION_ENDED);
    throw new ApiError(401, 'unauthorized', SESSION_ENDED);
  }
  if (!response.ok) throw await errorFrom(response);
  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, 'bad_response', 'The server sent an answer that is not JSON.');
    }
  }
  return { data, headers: response.headers, status: response.status };
}

export const get = (url, options) => request('GET', url, options).then((r) => r.data);
export const post = (url, body, options) => request('POST', url, { ...options, body }).then((r) => r.data);
export const patch = (url, body, options) => request('PATCH', url, { ...options, body }).then((r) => r.data);
export const put = (url, body, options) => request('PUT', url, { ...options, body }).then((r) => r.data);
export const del = (url, options) => request('DELETE', url, options).then((r) => r.data);

/** The first page of a Range-paged list, e.g. `version ..; max=50, order=desc`. */
export const getRange = (url, range, options) =>
  request('GET', url, { ...options, headers: { Range: range } }).then((r) => r.data);

/** A URL the API handed out, as a same-origin path (its host may not be the page's). */
export function sameOriginPath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

/** Opens a stream URL the API handed out; rejects with the API's message when refused. */
export async function openStream(url, { signal, headers } = {}) {
  let response;
  try {
    response = await fetch(sameOriginPath(url), { credentials: 'same-origin', signal, headers });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'The stream could not be opened: the server is unreachable.');
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** Calls `onText(chunk)` with the decoded text of `response` as it arrives. */
export async function readText(response, onText) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
  const rest = decoder.decode();
  if (rest) onText(rest);
}

/**
 * Reads a `text/event-stream` body: `onEvent({id, data})` per event, `onComment(text)` per
 * comment line. Resolves when the server closes the stream.
 */
export async function readEvents(response, onEvent, onComment = () => {}) {
  let buffer = '';
  let data = [];
  let id = null;
  await readText(response, (chunk) => {
    const lines = (buffer + chunk).split(/\r?\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent({ id, data: data.join('\n') });
        data = [];
        id = null;
      } else if (line.startsWith(':')) {
        onComment(line.slice(1).trim());
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
    }
  });
}
