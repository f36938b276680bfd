// A client's page (/dashboard/clients/{id}): campaign numbers over a range
// of days, links, data quality and webinars.
//
// - GET /api/clients/{id}/statistics/overview  visits, conversions, CVR,
//   link totals, webinar totals and the quality rates (DESIGN §4 rule 9);
// - GET /api/clients/{id}/campaigns/summary    conversions by source,
//   medium, campaign and all three, and how they were attributed;
// - GET /api/clients/{id}/campaigns/links      every link with a visit or
//   an attributed conversion in the range: visits, conversions, CVR;
// - GET /api/clients/{id}/webinars             its webinars in the range:
//   registrations, peak, viewers live now.
//
// The range is in the page's address (?from=&to=, dates), so a reload or a
// shared link keeps it; the token is not (see common.js).

import { $, api, fmt, h, isAuthError, pathId, showProblem, withToken } from './common.js';

const id = pathId('/dashboard/clients/');
const base = `/api/clients/${encodeURIComponent(id)}`;
const DEFAULT_DAYS = 30;

const QUALITY = [
  [
    'utm_tracking_rate',
    'UTM tracking rate',
    'Share of conversions credited to a UTM source — their own, their session’s first touch or their link’s — so that each registration can be traced to the channel that brought it.',
  ],
  [
    'utm_tracking_rate_before_attribution',
    'UTM tracking rate before attribution',
    'Share of conversions that carried a UTM source themselves; the gap to the rate above is what session and link attribution recovered.',
  ],
  [
    'visit_link_rate',
    'Visit link rate',
    'Share of conversions whose session had a recorded visit of this client before it; a conversion without one cannot be tied to how the registrant arrived, usually because a visit call was lost.',
  ],
  [
    'visit_coverage',
    'Visit coverage',
    'Share of campaign page views whose session also recorded a visit to that campaign the same day; below 100 % means pages are losing their visit calls.',
  ],
];

// --- the range ----------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');
const isoDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const isDate = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v ?? '');

/** The last `days` days, today included, in the browser's calendar. */
function lastDays(days) {
  const to = new Date();
  const from = new Date(to.getFullYear(), to.getMonth(), to.getDate() - (days - 1));
  return { from: isoDate(from), to: isoDate(to) };
}

function rangeFromAddress() {
  const q = new URLSearchParams(location.search);
  const from = q.get('from');
  const to = q.get('to');
  return isDate(from) && isDate(to) && from <= to ? { from, to } : lastDays(DEFAULT_DAYS);
}

let range = rangeFromAddress();

function setRange(next) {
  if (!isDate(next.from) || !isDate(next.to)) return;
  if (next.from > next.to) [next.from, next.to] = [next.to, next.from];
  range = next;
  const q = new URLSearchParams(location.search);
  q.set('from', range.from);
  q.set('to', range.to);
  history.replaceState(history.state, '', `${location.pathname}?${q}${location.hash}`);
  load();
}

function renderRange() {
  $('from').value = range.from;
  $('to').value = range.to;
  for (const b of document.querySelectorAll('.presets button')) {
    const preset = lastDays(Number(b.dataset.days));
    b.setAttribute('aria-pressed', String(preset.from === range.from && preset.to === range.to));
  }
}

// --- links --------------------------------------------------------------------

let linkRows = [];
let sort = { key: 'visits', dir: 'descending' };

function compare(a, b) {
  const { key, dir } = sort;
  const sign = dir === 'ascending' ? 1 : -1;
  const va = a[key];
  const vb = b[key];
  // A link without visits has no CVR: last, whichever the direction.
  if (va === null) return vb === null ? a.link_id.localeCompare(b.link_id) : 1;
  if (vb === null) return -1;
  const c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
  return c * sign || a.link_id.localeCompare(b.link_id);
}

function renderLinks(r) {
  if (r) linkRows = r.links;
  for (const th of document.querySelectorAll('#links th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset.sort === sort.key ? sort.dir : 'none');
  }
  const rows = [...linkRows].sort(compare);
  $('links').tBodies[0].replaceChildren(
    ...rows.map((l) =>
      h(
        'tr',
        { dataset: { link: l.link_id } },
        h('td', {}, l.link_id),
        h('td', {}, fmt.int(l.visits)),
        h('td', {}, fmt.int(l.conversions)),
        h('td', {}, fmt.pct(l.cvr)),
      ),
    ),
  );
  $('links-empty').hidden = rows.length > 0;
}

// --- the numbers ----------------------------------------------------------------

function keyTable(table, rows, key) {
  const max = Math.max(1, ...rows.map((r) => r.conversions));
  $(table).tBodies[0].replaceChildren(
    ...(rows.length
      ? rows.map((r) =>
          h(
            'tr',
            {},
            h('td', {}, r[key]),
            h('td', {}, h('span', { class: 'bar-cell', dataset: { share: (r.conversions / max).toFixed(3) } }), fmt.int(r.conversions)),
          ),
        )
      : [h('tr', {}, h('td', { colspan: 2, class: 'muted' }, 'No conversions in this range.'))]),
  );
  // Bar widths through the CSSOM (the page's policy allows no style attribute).
  for (const bar of $(table).querySelectorAll('.bar-cell')) bar.style.width = `${Number(bar.dataset.share) * 5}rem`;
}

function renderSummary(sum) {
  keyTable('by-source', sum.by_source, 'source');
  keyTable('by-medium', sum.by_medium, 'medium');
  keyTable('by-campaign', sum.by_campaign, 'campaign');
  $('by-combination').tBodies[0].replaceChildren(
    ...(sum.by_combination.length
      ? sum.by_combination.map((r) =>
          h(
            'tr',
            {},
            h('td', {}, r.source),
            h('td', { class: 'text' }, r.medium),
            h('td', { class: 'text' }, r.campaign),
            h('td', {}, fmt.int(r.conversions)),
          ),
        )
      : [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No conversions in this range.'))]),
  );
  const a = sum.attribution;
  $('attribution').textContent =
    `${fmt.int(sum.total_conversions)} conversions from ${fmt.day(Date.parse(`${sum.from}T00:00`))} to ${fmt.day(Date.parse(`${sum.to}T00:00`))}. ` +
    `Source taken from the conversion itself: ${fmt.int(a.own)}, from its session’s first touch: ${fmt.int(a.session)}, ` +
    `from its link: ${fmt.int(a.link)}, unknown: ${fmt.int(a.none)}.`;
}

function renderOverview(o) {
  $('kpi-visits').textContent = fmt.int(o.campaigns.visits);
  $('kpi-conversions').textContent = fmt.int(o.campaigns.conversions);
  $('kpi-cvr').textContent = fmt.pct(o.campaigns.cvr);
  $('kpi-campaigns').textContent = fmt.int(o.campaigns.total);
  $('links-totals').textContent =
    `In this range: links seen ${fmt.int(o.links.total)}, with visits ${fmt.int(o.links.active)}; ` +
    `visits through links ${fmt.int(o.links.total_visits)}, conversions through links ${fmt.int(o.links.total_conversions)}.`;
  $('webinar-totals').textContent =
    `In this range: webinars ${fmt.int(o.webinars.total)}, registrations ${fmt.int(o.webinars.registrations)}, ` +
    `distinct live viewers ${fmt.int(o.webinars.live_viewers)}, peak ${fmt.int(o.webinars.peak_concurrent)} at once.`;
  $('quality').replaceChildren(
    ...QUALITY.map(([key, label, sentence]) =>
      h(
        'div',
        { dataset: { rate: key } },
        h('dt', {}, label),
        h('dd', {}, h('span', { class: 'rate' }, fmt.pct(o.quality[key])), h('p', {}, sentence)),
      ),
    ),
  );
}

function renderWebinars(r) {
  $('webinars').tBodies[0].replaceChildren(
    ...r.webinars.map((w) =>
      h(
        'tr',
        { dataset: { webinar: w.webinar_id } },
        h('td', {}, h('a', { href: withToken(`/dashboard/webinars/${encodeURIComponent(w.webinar_id)}`) }, w.webinar_id)),
        h('td', {}, fmt.int(w.live)),
        h('td', {}, fmt.int(w.peak_concurrent)),
        h('td', {}, fmt.int(w.registrations)),
      ),
    ),
  );
  $('webinars-empty').hidden = r.webinars.length > 0;
}

let loading = null;

/** Reads everything for the range; a newer load cancels an older one. */
async function load() {
  renderRange();
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  const signal = controller.signal;
  const q = `from=${range.from}&to=${range.to}`;
  const parts = await Promise.allSettled([
    api(`${base}/statistics/overview?${q}`, { signal }).then(renderOverview),
    api(`${base}/campaigns/summary?${q}`, { signal }).then(renderSummary),
    api(`${base}/campaigns/links?${q}`, { signal }).then(renderLinks),
    api(`${base}/webinars?${q}`, { signal }).then(renderWebinars),
  ]);
  if (signal.aborted) return;
  const failed = parts.filter((p) => p.status === 'rejected').map((p) => p.reason);
  const auth = failed.find(isAuthError);
  if (auth) {
    showProblem($('problem'), auth, `--client ${id}`);
    for (const section of document.querySelectorAll('main > section')) section.hidden = true;
  } else if (failed.length) {
    showProblem($('problem'), failed[0], `--client ${id}`);
  } else {
    $('problem').hidden = true;
  }
  document.body.dataset.loaded = `${range.from}/${range.to}`;
}

// --- wiring ---------------------------------------------------------------------

$('title').textContent = id ? `Client ${id}` : 'Client';
document.title = `${id || 'Client'} — EventFlow`;

for (const b of document.querySelectorAll('.presets button')) {
  b.addEventListener('click', () => setRange(lastDays(Number(b.dataset.days))));
}
for (const input of [$('from'), $('to')]) {
  input.addEventListener('change', () => setRange({ from: $('from').value, to: $('to').value }));
}
for (const th of document.querySelectorAll('#links th[data-sort]')) {
  th.querySelector('button').addEventListener('click', () => {
    const key = th.dataset.sort;
    const dir = sort.key === key && sort.dir === 'descending' ? 'ascending' : 'descending';
    sort = { key, dir: key === 'link_id' && sort.key !== key ? 'ascending' : dir };
    renderLinks();
  });
}
if (!id) showProblem($('problem'), new Error('no client in the address: open /dashboard/clients/<client id>'), '--client <id>');
else load();
