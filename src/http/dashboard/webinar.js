// The webinar dashboard (/dashboard/webinars/{id}): the live count and the
// state of the connection, a chart of the last hour, tiles, and the final
// buckets.
//
// Where the numbers come from:
// - the WebSocket /ws/webinars/{id} (DESIGN §6): a `snapshot` on connect,
//   `live` when the count changes, `open` when the open bucket changes (at
//   most once a second), `bucket` when a bucket becomes final;
// - GET /api/webinars/{id}/live before each connection: it checks the token
//   (a refused WebSocket upgrade tells a browser nothing) and says whether
//   the service is back;
// - GET .../stats/access (5-minute buckets of the day and the last hour)
//   and .../stats/engagement (activity of the day's final buckets).
//
// The chart's line is the live count at each second, built here from the
// stream: the last value is carried forward each second while connected
// (a gap while disconnected). The band is each bucket's min–max and the
// dashed line its average; the open bucket's so far.

import { $, api, fmt, h, isAuthError, KINDS, pathId, showProblem, token } from './common.js';

const SECOND = 1000;
const HOUR = 3_600_000;
/** Reconnection waits: doubling from the first, capped, with jitter. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** A message whose clock is further than this from the browser's is a stale state, not a clock offset. */
const MAX_SKEW_MS = 60_000;

const id = pathId('/dashboard/webinars/');
const api_base = `/api/webinars/${encodeURIComponent(id)}`;

const s = {
  live: null,
  /** The webinar's clock at the last update. */
  ts: null,
  /** Browser clock minus the service's, the smallest seen (0 until known). */
  skew: null,
  open: null,
  periods: null,
  /** Final buckets by start. */
  finals: new Map(),
  /** The start of the history read (the day's start or an hour ago). */
  historyFrom: null,
  /** The live count at each second (epoch seconds). */
  seconds: new Map(),
  filledTo: null,
  /** Engagement of the final buckets of [engagementFrom, engagementTo). */
  engagement: null,
  engagementFrom: null,
  engagementTo: null,
  /** Engagement of buckets that closed but may not be in the store yet, by start. */
  closing: new Map(),
  connection: 'connecting',
  attempt: 0,
  retryAt: null,
  refused: false,
  snapshots: 0,
};

let socket = null;
let retryTimer = null;
let chart = null;
let tableVersion = 0;
let renderedTable = -1;

const serverNow = () => Date.now() - (s.skew ?? 0);
const nowSecond = () => Math.floor(serverNow() / SECOND);
const dayStart = () => s.periods?.day?.start ?? null;

// --- the connection ---------------------------------------------------------

function setConnection(state) {
  s.connection = state;
  const el = $('state');
  el.dataset.state = state;
  if (state === 'live') el.textContent = 'Live';
  else if (state === 'connecting') el.textContent = 'Connecting…';
  else if (state === 'refused') el.textContent = 'Not authorized';
  else if (state === 'reconnecting') {
    const wait = s.retryAt === null ? 0 : Math.ceil((s.retryAt - Date.now()) / SECOND);
    el.textContent = wait > 0 ? `Reconnecting in ${wait} s` : 'Reconnecting…';
  }
}

async function connect() {
  clearTimeout(retryTimer);
  s.retryAt = null;
  if (s.connection === 'reconnecting') setConnection('reconnecting');
  let now;
  try {
    now = await api(`${api_base}/live`);
  } catch (e) {
    // 404: nobody has joined yet; the feed shows the first viewer.
    if (e.status === 404) now = { live: 0, open_bucket: null, open_periods: null };
    else if (isAuthError(e) || (e.status >= 400 && e.status < 500 && e.status !== 429)) return refuse(e);
    else return retryLater();
  }
  apply(now);
  if (s.historyFrom === null) {
    loadHistory();
    refreshEngagement();
  }
  render();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(
    `${scheme}://${location.host}/ws/webinars/${encodeURIComponent(id)}?token=${encodeURIComponent(token)}`,
  );
  socket = ws;
  ws.onmessage = (event) => {
    let m;
    try {
      m = JSON.parse(event.data);
    } catch {
      return;
    }
    if (m.type === 'snapshot') {
      s.attempt = 0;
      setConnection('live');
    }
    handle(m);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    retryLater();
  };
}

/** Tries again after a wait that doubles each failed attempt (with jitter). */
function retryLater() {
  s.attempt += 1;
  const cap = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (s.attempt - 1));
  const wait = cap / 2 + Math.random() * (cap / 2);
  s.retryAt = Date.now() + wait;
  setConnection('reconnecting');
  retryTimer = setTimeout(connect, wait);
  render();
}

function refuse(error) {
  s.refused = true;
  setConnection('refused');
  showProblem($('problem'), error, `--webinar ${id}`);
  for (const section of document.querySelectorAll('main > section')) section.hidden = true;
}

// --- what the service says ----------------------------------------------------

function handle(m) {
  if (m.type === 'bucket') onBucket(m);
  else apply(m);
  if (m.type === 'snapshot') {
    for (const b of m.recent_buckets ?? []) addFinal(b);
    // After a reconnection: whatever closed while this page was away is in
    // the store. (The first connection reads it at once.)
    if (++s.snapshots > 1) {
      loadHistory();
      refreshEngagement();
    }
  }
  render();
}

/** A snapshot, `live`, `open` or the /live answer. */
function apply(m) {
  if (typeof m.ts === 'number') {
    const offset = Date.now() - m.ts;
    if (Math.abs(offset) <= MAX_SKEW_MS && (s.skew === null || offset < s.skew)) s.skew = offset;
  }
  if (typeof m.live === 'number' && typeof m.ts === 'number') {
    s.live = m.live;
    s.ts = m.ts;
    record(m.live, m.ts);
  }
  if ('open_bucket' in m) onOpen(m.open_bucket);
  if ('open_periods' in m) onPeriods(m.open_periods);
}

/** The count changed at `ts`: seconds from then on carry the new value. */
function record(live, ts) {
  const now = nowSecond();
  const at = Math.min(Math.max(Math.floor(ts / SECOND), now - 3600), now);
  const until = Math.max(s.filledTo ?? at, at);
  for (let t = at; t <= until; t++) s.seconds.set(t, live);
  s.filledTo = until;
}

function onOpen(b) {
  const was = s.open;
  if (was && (!b || b.bucket_start !== was.bucket_start)) closed(was);
  s.open = b ?? null;
  if (b) labelBuckets(b.bucket_end - b.bucket_start);
}

/** The open bucket `b` is over: its engagement counts until the store has it. */
function closed(b) {
  if (b.engagement) s.closing.set(b.bucket_start, b.engagement);
  refreshEngagement();
}

function onPeriods(p) {
  const before = dayStart();
  s.periods = p ?? null;
  if (dayStart() !== null && dayStart() !== before && before !== null) {
    // A new day: its numbers start again.
    loadHistory();
    refreshEngagement();
  }
}

function onBucket(b) {
  addFinal(b);
  if (s.open && s.open.bucket_start === b.bucket_start) {
    closed(s.open);
    s.open = null;
  }
  labelBuckets(b.bucket_end - b.bucket_start);
}

function addFinal(b) {
  s.finals.set(b.bucket_start, b);
  tableVersion += 1;
}

// --- reads --------------------------------------------------------------------

let historyRead = 0;

/** The day's final buckets (and at least the last hour's). */
async function loadHistory() {
  const read = ++historyRead;
  const now = serverNow();
  const from = Math.min(dayStart() ?? Infinity, now - HOUR);
  try {
    const r = await api(`${api_base}/stats/access?from=${Math.floor(from)}&to=${Math.ceil(now + HOUR)}&interval=5m`);
    if (read !== historyRead) return;
    s.historyFrom = from;
    for (const b of r.buckets) addFinal(b);
    render();
  } catch (e) {
    if (isAuthError(e)) refuse(e);
  }
}

let engagementRead = 0;

/**
 * The engagement of the day's final buckets. A bucket that just closed may
 * not be in the store yet: until an answer holds at least what that bucket
 * had when it was open, it is asked again (a few times).
 */
async function refreshEngagement(tries = 8) {
  const read = ++engagementRead;
  const now = serverNow();
  const from = dayStart() ?? now - HOUR;
  const to = s.open?.bucket_start ?? now;
  if (to <= from) return;
  let r;
  try {
    r = await api(`${api_base}/stats/engagement?from=${Math.floor(from)}&to=${Math.ceil(to)}`);
  } catch (e) {
    if (isAuthError(e)) refuse(e);
    return;
  }
  if (read !== engagementRead) return;
  const pending = [...s.closing].filter(([start]) => start >= from && start < to);
  const expected = (kind) =>
    (s.engagementFrom === from ? (s.engagement?.[kind] ?? 0) : 0) +
    pending.reduce((n, [, e]) => n + (e[kind] ?? 0), 0);
  const complete = KINDS.every(([kind]) => (r.by_kind[kind] ?? 0) >= expected(kind));
  if (!complete && tries > 1) {
    setTimeout(() => read === engagementRead && refreshEngagement(tries - 1), SECOND);
    return;
  }
  s.engagement = r.by_kind;
  s.engagementFrom = from;
  s.engagementTo = to;
  for (const [start] of [...s.closing]) if (start < to) s.closing.delete(start);
  render();
}

// --- drawing --------------------------------------------------------------------

function labelBuckets(ms) {
  if (!(ms > 0)) return;
  const text = ms % 60_000 === 0 ? `${ms / 60_000}-minute` : `${ms / SECOND}-second`;
  for (const el of document.querySelectorAll('.bucket-len')) el.textContent = text;
}

/** The final buckets of the day (or of the loaded history), and the open one. */
function dayBuckets() {
  const from = dayStart() ?? s.historyFrom ?? -Infinity;
  const out = [...s.finals.values()].filter((b) => b.bucket_start >= from);
  if (s.open && s.open.bucket_start >= from) out.push(s.open);
  return out;
}

function render() {
  $('title').textContent = id;
  document.title = `${id} — EventFlow`;
  $('live').textContent = fmt.int(s.live);
  if (s.ts !== null) {
    $('as-of').textContent =
      s.connection === 'live' ? `as of ${fmt.timeSeconds(s.ts)}` : `last update ${fmt.timeSeconds(s.ts)}`;
  }
  const since = dayStart() !== null ? `since ${fmt.dayTime(dayStart())}` : 'in the last hour';
  const day = dayBuckets();
  // The live count is a moment of the open bucket: the peak is at least that.
  const peaks = day.map((b) => b.max_concurrent).concat(s.open && s.live !== null ? [s.live] : []);
  $('peak').textContent = peaks.length ? fmt.int(Math.max(...peaks)) : '–';
  $('peak-note').textContent = since;
  $('uniques').textContent = fmt.int(s.periods?.day?.unique_viewers);
  $('uniques-note').textContent = dayStart() !== null ? since : 'nobody this day yet';
  $('joins').textContent = fmt.int(s.open?.joins);
  $('leaves').textContent = fmt.int(s.open?.leaves);
  $('bucket-note').textContent = s.open
    ? `in the open bucket, ${fmt.span(s.open.bucket_start, s.open.bucket_end)}`
    : 'no bucket open';
  renderEngagement(since);
  renderTable();
  drawChart();
}

function renderEngagement(since) {
  const box = $('engagement');
  if (!box.children.length) {
    box.append(...KINDS.map(([kind, label]) => h('div', {}, h('dt', {}, label), h('dd', { dataset: { kind } }, '–'))));
  }
  $('engagement-note').textContent = since;
  if (!s.engagement) return;
  const closing = [...s.closing].filter(([start]) => start >= s.engagementTo);
  for (const [kind] of KINDS) {
    const n =
      (s.engagement[kind] ?? 0) +
      closing.reduce((sum, [, e]) => sum + (e[kind] ?? 0), 0) +
      (s.open?.engagement?.[kind] ?? 0);
    box.querySelector(`[data-kind="${kind}"]`).textContent = fmt.int(n);
  }
}

function renderTable() {
  if (renderedTable === tableVersion) return;
  renderedTable = tableVersion;
  const rows = [...s.finals.values()].sort((a, b) => b.bucket_start - a.bucket_start);
  $('buckets').tBodies[0].replaceChildren(
    ...rows.map((b) =>
      h(
        'tr',
        { dataset: { start: b.bucket_start } },
        h('td', {}, fmt.span(b.bucket_start, b.bucket_end)),
        h('td', {}, fmt.int(b.min_concurrent)),
        h('td', {}, fmt.dec1(b.avg_concurrent)),
        h('td', {}, fmt.int(b.max_concurrent)),
        h('td', {}, fmt.int(b.unique_viewers)),
        h('td', {}, fmt.int(b.joins)),
        h('td', {}, fmt.int(b.leaves)),
      ),
    ),
  );
  $('buckets-empty').hidden = rows.length > 0;
}

/** The chart's columns: each second of the last hour. */
function chartData() {
  const now = nowSecond();
  const start = now - 3600;
  const buckets = [...s.finals.values()].filter((b) => b.bucket_end > start * SECOND);
  if (s.open) buckets.push({ ...s.open, bucket_end: Math.min(s.open.bucket_end, (now + 1) * SECOND) });
  buckets.sort((a, b) => a.bucket_start - b.bucket_start);
  const x = [];
  const live = [];
  const hi = [];
  const lo = [];
  const avg = [];
  let i = 0;
  for (let t = start; t <= now; t++) {
    const ms = t * SECOND;
    while (i < buckets.length && buckets[i].bucket_end <= ms) i++;
    const b = i < buckets.length && buckets[i].bucket_start <= ms ? buckets[i] : null;
    x.push(t);
    live.push(s.seconds.get(t) ?? null);
    hi.push(b ? b.max_concurrent : null);
    lo.push(b ? b.min_concurrent : null);
    avg.push(b ? b.avg_concurrent : null);
  }
  return [x, live, hi, lo, avg];
}

function chartSize() {
  const width = Math.max(200, $('chart').clientWidth);
  return { width, height: width < 600 ? 200 : 260 };
}

function drawChart() {
  if (typeof uPlot === 'undefined') return;
  const data = chartData();
  if (chart) {
    chart.setData(data);
    return;
  }
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const axis = {
    stroke: color('--muted'),
    grid: { stroke: color('--line'), width: 1 },
    ticks: { stroke: color('--line'), width: 1 },
  };
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000];
  chart = new uPlot(
    {
      ...chartSize(),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => [0, Math.max(4, Math.ceil((max ?? 0) * 1.15))] },
      },
      axes: [
        { ...axis, size: 36, values: (u, ticks) => ticks.map((t) => fmt.time(t * SECOND)) },
        { ...axis, incrs: steps, size: 48, values: (u, ticks) => ticks.map((v) => fmt.int(v)) },
      ],
      series: [
        {},
        { label: 'Live', stroke: color('--c-live'), width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        { label: 'Bucket max', stroke: 'transparent', points: { show: false } },
        { label: 'Bucket min', stroke: 'transparent', points: { show: false } },
        { label: 'Bucket average', stroke: color('--c-avg'), width: 1.5, dash: [5, 4], points: { show: false } },
      ],
      bands: [{ series: [2, 3], fill: color('--c-band') }],
    },
    data,
    $('chart'),
  );
  new ResizeObserver(() => chart.setSize(chartSize())).observe($('chart'));
}

// --- every second -----------------------------------------------------------------

function tick() {
  if (s.connection === 'live' && s.filledTo !== null && s.live !== null) {
    const now = nowSecond();
    for (let t = s.filledTo + 1; t <= now; t++) s.seconds.set(t, s.live);
    s.filledTo = Math.max(s.filledTo, now);
    for (const t of s.seconds.keys()) if (t < now - 3605) s.seconds.delete(t);
  }
  if (s.connection === 'reconnecting') setConnection('reconnecting');
  if (!s.refused) render();
}

// A hook for tests and the curious: what the page holds and draws.
window.__eventflow = {
  state: () => ({
    live: s.live,
    ts: s.ts,
    connection: s.connection,
    open_bucket: s.open,
    open_periods: s.periods,
    finals: [...s.finals.values()],
    engagement: s.engagement,
  }),
  chart: () => (chart ? { x: chart.data[0], live: chart.data[1], max: chart.data[2], min: chart.data[3], avg: chart.data[4] } : null),
};

$('title').textContent = id || 'Webinar';
if (!id) {
  refuse(new Error('no webinar in the address: open /dashboard/webinars/<webinar id>'));
} else if (!token) {
  refuse(null);
} else {
  window.addEventListener('online', () => s.connection === 'reconnecting' && connect());
  setInterval(tick, SECOND);
  render();
  connect();
}
