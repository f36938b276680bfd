// The start page (/): what the token in the address can read.
//
// - an admin token: the webinars live now (GET /api/webinars, refreshed
//   every few seconds), and boxes to open any webinar's or client's page;
// - a client token: the client's webinars (GET /api/clients/{id}/webinars)
//   and its client page;
// - a webinar token: straight to that webinar's dashboard.
//
// Which one it is comes from the token's own claims (its first part), read
// here only to choose what to show: the service checks the token on every
// request.

import { $, api, ApiError, claims, fmt, h, isAuthError, showProblem, token, withToken } from './common.js';

const REFRESH_MS = 5000;

const webinarPage = (w) => `/dashboard/webinars/${encodeURIComponent(w)}`;
const clientPage = (c) => `/dashboard/clients/${encodeURIComponent(c)}`;

function problem(error, need = '--admin') {
  showProblem($('problem'), error, need);
  for (const section of document.querySelectorAll('main > section')) section.hidden = true;
}

function table(head, rows) {
  $('webinars-head').replaceChildren(
    ...head.map(([label, numeric]) => h('th', { scope: 'col', class: numeric ? 'num' : null }, label)),
  );
  $('webinars').tBodies[0].replaceChildren(...rows);
  $('webinars-empty').hidden = rows.length > 0;
  $('webinars-updated').textContent = `Updated ${fmt.timeSeconds(Date.now())}; refreshed every ${REFRESH_MS / 1000} s.`;
  $('webinars-section').hidden = false;
}

async function admin() {
  $('title').textContent = 'Webinars';
  $('open-section').hidden = false;
  const { webinars } = await api('/api/webinars');
  table(
    [['Webinar'], ['Live now', true]],
    webinars.map((w) =>
      h(
        'tr',
        { dataset: { webinar: w.webinar_id } },
        h('td', {}, h('a', { href: withToken(webinarPage(w.webinar_id)) }, w.webinar_id)),
        h('td', {}, fmt.int(w.live)),
      ),
    ),
  );
}

async function client(clientId) {
  $('title').textContent = `Client ${clientId}`;
  $('client-title').textContent = `Client ${clientId}`;
  $('client-link').href = withToken(clientPage(clientId));
  $('client-section').hidden = false;
  $('webinars-title').textContent = 'Webinars of the last 30 days';
  const r = await api(`/api/clients/${encodeURIComponent(clientId)}/webinars`);
  $('webinars-empty').textContent = 'No webinar is named on this client’s visits or registrations of the last 30 days.';
  table(
    [['Webinar'], ['Live now', true], ['Peak', true], ['Registrations', true]],
    r.webinars.map((w) =>
      h(
        'tr',
        { dataset: { webinar: w.webinar_id } },
        h('td', {}, h('a', { href: withToken(webinarPage(w.webinar_id)) }, w.webinar_id)),
        h('td', {}, fmt.int(w.live)),
        h('td', {}, fmt.int(w.peak_concurrent)),
        h('td', {}, fmt.int(w.registrations)),
      ),
    ),
  );
}

function openForms() {
  const go = (form, input, page) =>
    $(form).addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $(input).value.trim();
      if (v) location.assign(withToken(page(v)));
    });
  go('open-webinar', 'webinar-id', webinarPage);
  go('open-client', 'client-id', clientPage);
}

async function main() {
  if (!token) return problem(null);
  const c = claims();
  if (c && typeof c.exp === 'number' && c.exp <= Date.now()) {
    return problem(new ApiError(401, `the token expired at ${fmt.dayTime(c.exp)}`));
  }
  if (c?.scope === 'webinar') {
    location.replace(webinarPage(c.id));
    return;
  }
  if (c?.scope?.startsWith('ingest')) {
    return problem(new ApiError(403, 'an ingest key sends browser events and reads nothing'));
  }
  openForms();
  const show = c?.scope === 'client' ? () => client(c.id) : admin;
  const need = c?.scope === 'client' ? `--client ${c.id}` : '--admin';
  const refresh = async () => {
    try {
      await show();
      $('problem').hidden = true;
    } catch (e) {
      if (isAuthError(e)) {
        problem(e, need);
        return;
      }
      showProblem($('problem'), e, need);
    }
    setTimeout(refresh, REFRESH_MS);
  };
  refresh();
}

main();
