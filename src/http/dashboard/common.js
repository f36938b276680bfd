// What every dashboard page shares: the token, requests to the read API,
// the message shown when the token does not fit, and how numbers and times
// are written (the browser's locale and time zone).
//
// The token arrives in the URL's fragment (`#token=...`), which browsers
// never send to a server, so it stays out of access logs and Referer
// headers. It is kept in sessionStorage, so a reload of this tab still has
// it, and removed from the visible URL at once, so it is not copied along
// with the address or left in the history.

const TOKEN_KEY = 'eventflow.token';

/** The page's token: from the fragment (kept, then hidden), or the tab's. */
export function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get('token');
  if (given) {
    try {
      sessionStorage.setItem(TOKEN_KEY, given);
    } catch {
      // Storage refused (a private mode): the token lives as long as the page.
    }
    fragment.delete('token');
    const rest = fragment.toString();
    history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return given;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export const token = takeToken();

/**
 * What a token says about itself: `{scope, id, exp}` (scope is admin,
 * client, webinar or an ingest-* kind), or null when it is not one of
 * ours. Read without checking the signature: the server does that on every
 * request, this only picks what to show.
 */
export function claims(t = token) {
  try {
    const part = t.split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (ch) => ch.charCodeAt(0))));
    return typeof c.scope === 'string' ? c : null;
  } catch {
    return null;
  }
}

/** A failed API call: its HTTP status and the service's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET an API path with the token; the parsed JSON, or an ApiError. */
export async function api(path, { signal } = {}) {
  const response = await fetch(path, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    cache: 'no-store',
    signal,
  });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the status says enough.
  }
  if (!response.ok) {
    throw new ApiError(response.status, body?.error || `${response.status} ${response.statusText}`);
  }
  return body;
}

/** Whether an error means the token does not fit (missing, bad, foreign). */
export const isAuthError = (e) => e instanceof ApiError && (e.status === 401 || e.status === 403);

/** `document.getElementById`. */
export const $ = (id) => document.getElementById(id);

/**
 * A new element: `h('td', {class: 'x'}, 'text', child)`. Text goes in as
 * text, never as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** `path` of this service with the token in its fragment, for links. */
export const withToken = (path) => (token ? `${path}#token=${encodeURIComponent(token)}` : path);

/**
 * Shows why the page cannot read its data, in `box`, with what to do:
 * open the page again with a token that fits (`need` says which, e.g.
 * "--webinar w-17").
 */
export function showProblem(box, error, need) {
  const example = `${location.origin}${location.pathname}#token=…`;
  const mint = h('code', {}, `eventflow token ${need}`);
  let lines;
  if (!token) {
    lines = [
      h('p', {}, h('strong', {}, 'This page needs a token.')),
      h('p', {}, 'Open it with the token in the address, after a #: ', h('code', {}, example)),
      h('p', {}, 'Mint one with ', mint, '.'),
    ];
  } else if (error instanceof ApiError && error.status === 403) {
    lines = [
      h('p', {}, h('strong', {}, 'This token does not grant access to this page.')),
      h('p', {}, 'Open the page with a token for it: ', h('code', {}, example), ' — mint one with ', mint, '.'),
    ];
  } else if (error instanceof ApiError && error.status === 401) {
    lines = [
      h('p', {}, h('strong', {}, `The token was refused: ${error.message}.`)),
      h('p', {}, 'Open the page again with a valid token: ', h('code', {}, example), ' — mint one with ', mint, '.'),
    ];
  } else {
    lines = [h('p', {}, h('strong', {}, 'The numbers could not be read: '), String(error?.message || error))];
  }
  box.classList.remove('info');
  box.replaceChildren(...lines);
  box.hidden = false;
}

const locale = undefined; // the browser's
const integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const clock = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
const clockSeconds = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayAndClock = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const day = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric' });

/** How numbers and times are written, in the browser's locale and zone. */
export const fmt = {
  /** 1,234 (or "–" when unknown). */
  int: (n) => (n === null || n === undefined ? '–' : integer.format(n)),
  /** 12.3 */
  dec1: (n) => (n === null || n === undefined ? '–' : oneDecimal.format(n)),
  /** 12.3 % (or "–" when the rate has no denominator). */
  pct: (n) => (n === null || n === undefined ? '–' : `${oneDecimal.format(n)} %`),
  /** 14:05 */
  time: (ms) => clock.format(ms),
  /** 14:05:09 */
  timeSeconds: (ms) => clockSeconds.format(ms),
  /** Mar 3, 14:05 */
  dayTime: (ms) => dayAndClock.format(ms),
  /** Mar 3, 2026 */
  day: (ms) => day.format(ms),
  /** 14:05–14:10: a bucket's span (with seconds when it is not whole minutes). */
  span: (start, end) => {
    const f = start % 60_000 || end % 60_000 ? clockSeconds : clock;
    return f.formatRange ? f.formatRange(start, end) : `${f.format(start)}–${f.format(end)}`;
  },
};

/** The activity kinds (DESIGN §3), in the order the pages show them. */
export const KINDS = [
  ['chat', 'Chat'],
  ['question', 'Questions'],
  ['poll', 'Polls'],
  ['download', 'Downloads'],
  ['form', 'Forms'],
  ['giveaway', 'Giveaways'],
  ['cta', 'Calls to action'],
];

/** The path segment after `prefix` (`/dashboard/webinars/`), decoded. */
export function pathId(prefix) {
  const rest = location.pathname.startsWith(prefix) ? location.pathname.slice(prefix.length) : '';
  try {
    return decodeURIComponent(rest.split('/')[0]);
  } catch {
    return '';
  }
}
