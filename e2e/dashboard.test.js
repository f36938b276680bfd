// The dashboard (src/http/dashboard/) in Chromium against a service of its
// own: data is seeded through POST /api/events with an admin token, the
// pages are opened with scoped tokens in the URL fragment, and what they
// show is compared with the read API's answers.
//
// The service runs with an idle lag of an hour, so the seeded events keep
// their own times (the last twenty minutes: final buckets and an open one)
// and nothing expires on its own while the tests look.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { eventually, launchBrowser, screenshotDir, startService, unique } from './harness.js';

const BUCKET = 300_000;
const MINUTE = 60_000;
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** The browsers' zone: not the service's (UTC), so local times are tested. */
const ZONE = 'Asia/Seoul';
const ZONE_OFFSET = 9 * 3_600_000;

let browser;
let svc;

before(async () => {
  [browser, svc] = await Promise.all([launchBrowser(), startService({ EVENTFLOW__WINDOW__IDLE_LAG_MS: '3600000' })]);
});

after(async () => {
  await browser?.close();
  await svc?.stop();
});

/** POSTs events to the batch endpoint with the service's admin token. */
async function post(events) {
  const r = await fetch(`${svc.url}/api/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  assert.equal(r.status, 202, await r.text());
}

/** GET with the admin token; the body (status 200 asserted). */
async function read(path) {
  const { status, body } = await svc.get(path);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

/** A page in a context of its own (its own storage) of the given size. */
async function open(viewport = LAPTOP, options = {}) {
  const context = await browser.newContext({
    viewport,
    locale: 'en-GB',
    timezoneId: ZONE,
    deviceScaleFactor: viewport === PHONE ? 2 : 1,
    isMobile: viewport === PHONE,
    hasTouch: viewport === PHONE,
    ...options,
  });
  const page = await context.newPage();
  const requests = [];
  const sockets = [];
  const errors = [];
  page.on('request', (r) => requests.push(r));
  page.on('websocket', (ws) => sockets.push(ws.url()));
  page.on('pageerror', (e) => errors.push(e));
  return { context, page, requests, sockets, errors };
}

/** A number as the page wrote it (en-GB: 1,234.5). */
const number = (text) => {
  const digits = text.replace(/[^0-9.-]/g, '');
  return digits === '' ? NaN : Number(digits);
};
const oneDecimal = new Intl.NumberFormat('en-GB', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const text = (page, selector) => page.locator(selector).first().innerText();
const shown = async (page, selector) => number(await text(page, selector));

/** Whether the page scrolls sideways. */
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > innerWidth);

async function screenshot(page, name) {
  const path = join(await screenshotDir(), `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const KINDS = ['chat', 'question', 'poll', 'download', 'form', 'giveaway', 'cta'];

describe('the webinar dashboard', () => {
  const webinar = unique('w');
  let token;
  let expectedLive;

  before(async () => {
    token = await svc.mint('--webinar', webinar);
    // Not within the first seconds of a bucket: the open one gets events.
    const into = Date.now() % BUCKET;
    if (into < 15_000) await new Promise((r) => setTimeout(r, 15_000 - into));
    const now = Date.now();
    const open = now - (now % BUCKET);
    const start = open - 3 * BUCKET + 30_000;
    const last = now - 1000;
    const events = [];
    const viewer = (id, from, to, leave) => {
      for (let t = from; t <= to; t += MINUTE) {
        events.push({ type: 'presence', webinar_id: webinar, viewer_id: id, action: 'ping', ts: t });
      }
      if (leave) events.push({ type: 'presence', webinar_id: webinar, viewer_id: id, action: 'leave', ts: leave });
    };
    viewer('v1', start, last);
    viewer('v2', start + MINUTE, last);
    viewer('v3', start + 2 * MINUTE, start + 6 * MINUTE, start + 7 * MINUTE);
    viewer('v4', open - 200_000, last);
    viewer('v5', last - 2000, last - 2000);
    viewer('v6', last - 9000, last - 9000, last - 6000);
    const activity = (kind, ts) => events.push({ type: 'activity', webinar_id: webinar, viewer_id: 'v1', kind, ts });
    activity('chat', start + 100_000);
    activity('chat', start + 350_000);
    activity('question', start + 700_000);
    activity('download', open - 5000);
    activity('poll', last - 800);
    activity('cta', last - 500);
    activity('chat', last - 300);
    events.sort((a, b) => a.ts - b.ts);
    await post(events);
    expectedLive = 4; // v1, v2, v4, v5
    await eventually('the service has the final buckets and the live count', async () => {
      const live = await read(`/api/webinars/${webinar}/live`);
      const access = await read(`/api/webinars/${webinar}/stats/access?from=${start - BUCKET}&to=${now + BUCKET}&interval=5m`);
      return live.live === expectedLive && access.buckets.length >= 3 && live.open_bucket?.engagement?.chat === 1;
    });
  });

  /** What the page must show, from the API. */
  async function expected() {
    const live = await read(`/api/webinars/${webinar}/live`);
    const day = live.open_periods.day;
    const from = Math.min(day.start, live.ts - 3_600_000);
    const finals = (await read(`/api/webinars/${webinar}/stats/access?from=${from}&to=${live.ts + 3_600_000}&interval=5m`))
      .buckets;
    const engagement = (
      await read(`/api/webinars/${webinar}/stats/engagement?from=${day.start}&to=${live.open_bucket.bucket_start}`)
    ).by_kind;
    const peak = Math.max(live.live, live.open_bucket.max_concurrent, ...finals.filter((b) => b.bucket_start >= day.start).map((b) => b.max_concurrent));
    return { live, finals, engagement, peak };
  }

  it('shows the live count, tiles, chart and table the API reads, with the token kept out of URLs', async () => {
    const { context, page, requests, sockets, errors } = await open();
    const url = `${svc.url}/dashboard/webinars/${webinar}`;
    await page.goto(`${url}#token=${token}`);
    await page.locator('#state[data-state="live"]').waitFor();
    assert.equal(page.url(), url, 'the token leaves the address at once');
    assert.equal(await page.evaluate(() => location.href), url);

    const want = await expected();
    await eventually('the live count is the API’s', async () => (await shown(page, '#live')) === want.live.live);
    await eventually('the tiles are the API’s', async () => {
      const got = {
        peak: await shown(page, '#peak'),
        uniques: await shown(page, '#uniques'),
        joins: await shown(page, '#joins'),
        leaves: await shown(page, '#leaves'),
      };
      const ok =
        got.peak === want.peak &&
        got.uniques === want.live.open_periods.day.unique_viewers &&
        got.joins === want.live.open_bucket.joins &&
        got.leaves === want.live.open_bucket.leaves;
      return ok || got;
    });
    assert.ok(want.live.open_bucket.joins >= 1 && want.live.open_bucket.leaves >= 1, 'the open bucket has joins and leaves');
    await eventually('engagement by kind is the final buckets’ and the open one’s', async () => {
      for (const kind of KINDS) {
        const n = want.engagement[kind] + want.live.open_bucket.engagement[kind];
        if ((await shown(page, `#engagement [data-kind="${kind}"]`)) !== n) return false;
      }
      return true;
    });
    assert.equal(await shown(page, '#engagement [data-kind="chat"]'), 3);
    assert.equal(await shown(page, '#engagement [data-kind="poll"]'), 1);

    // The table: every final bucket, newest first, times local, one decimal.
    await eventually('the table has every final bucket', async () => (await page.locator('#buckets tbody tr').count()) === want.finals.length);
    const rows = await page.locator('#buckets tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ start: Number(tr.dataset.start), cells: [...tr.cells].map((c) => c.textContent) })),
    );
    const newestFirst = [...want.finals].sort((a, b) => b.bucket_start - a.bucket_start);
    assert.deepEqual(
      rows.map((r) => r.start),
      newestFirst.map((b) => b.bucket_start),
    );
    const hhmm = (ms) => new Date(ms + ZONE_OFFSET).toISOString().slice(11, 16);
    rows.forEach((row, i) => {
      const b = newestFirst[i];
      assert.equal(row.cells[0], `${hhmm(b.bucket_start)}–${hhmm(b.bucket_end)}`);
      assert.match(row.cells[2], /^\d+\.\d$/);
      assert.equal(row.cells[2], oneDecimal.format(b.avg_concurrent));
      assert.deepEqual(
        [1, 3, 4, 5, 6].map((c) => number(row.cells[c])),
        [b.min_concurrent, b.max_concurrent, b.unique_viewers, b.joins, b.leaves],
      );
    });

    // The chart: a line of live counts each second, and the buckets' band.
    const chart = await eventually('the chart has drawn', () =>
      page.evaluate(() => {
        const c = window.__eventflow.chart();
        return c && c.live.filter((v) => v !== null).length >= 2 ? c : null;
      }),
    );
    assert.ok(chart.x.length >= 3600, `an hour of seconds: ${chart.x.length}`);
    assert.ok(chart.x.every((t, i) => i === 0 || t === chart.x[i - 1] + 1), 'one point a second');
    assert.equal(chart.live.findLast((v) => v !== null), want.live.live);
    assert.ok(chart.max.filter((v) => v !== null).length >= 3 * 300, 'three buckets of band at least');
    assert.ok(chart.max.every((v, i) => v === null || v >= chart.min[i]));
    assert.equal(await page.locator('#chart canvas').count(), 1);

    // A new viewer shows within a second.
    await post([{ type: 'presence', webinar_id: webinar, viewer_id: unique('v-new'), action: 'ping' }]);
    await eventually('the new viewer is counted', async () => (await shown(page, '#live')) === want.live.live + 1, 1000);
    expectedLive = want.live.live + 1;

    // The token went in no request's address but the WebSocket's, and no
    // request carried a Referer.
    assert.ok(requests.length >= 8, requests.map((r) => r.url()).join('\n'));
    for (const r of requests) {
      assert.ok(!r.url().includes(token), `the token in ${r.url()}`);
      assert.ok(!(await r.allHeaders()).referer, `a Referer on ${r.url()}`);
    }
    const api = requests.filter((r) => new URL(r.url()).pathname.startsWith('/api/'));
    assert.ok(api.length >= 3);
    for (const r of api) assert.equal(r.headers().authorization, `Bearer ${token}`);
    assert.equal(sockets.length, 1);
    assert.equal(new URL(sockets[0]).searchParams.get('token'), token);

    assert.ok(!(await overflows(page)), 'no sideways scrolling at 1280×800');
    for (const id of ['#live', '#state', '#peak', '#uniques', '#joins', '#engagement', '#chart', '#buckets']) {
      assert.ok(await page.locator(id).isVisible(), `${id} is visible`);
    }
    await screenshot(page, 'webinar-laptop');
    // A reload finds the token in the tab's storage.
    await page.reload();
    await page.locator('#state[data-state="live"]').waitFor();
    assert.equal(page.url(), url);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('fits a phone: no sideways scrolling, the table scrolls in its box', async () => {
    const { context, page, errors } = await open(PHONE);
    await page.goto(`${svc.url}/dashboard/webinars/${webinar}#token=${token}`);
    await page.locator('#state[data-state="live"]').waitFor();
    await eventually('the table is filled', async () => (await page.locator('#buckets tbody tr').count()) >= 3);
    await eventually('the chart has drawn', () => page.evaluate(() => window.__eventflow.chart()?.live.some((v) => v !== null)));
    assert.ok(!(await overflows(page)), 'no sideways scrolling at 390×844');
    for (const id of ['#live', '#state', '#peak', '#uniques', '#engagement', '#chart', '#buckets']) {
      assert.ok(await page.locator(id).isVisible(), `${id} is visible`);
    }
    const box = await page.locator('#buckets').evaluate((t) => {
      const b = t.parentElement.getBoundingClientRect();
      return { right: b.right, width: innerWidth };
    });
    assert.ok(box.right <= box.width, 'the table’s box stays on the screen');
    const chart = await page.locator('#chart canvas').boundingBox();
    assert.ok(chart.x >= 0 && chart.x + chart.width <= PHONE.width, `the chart fits: ${JSON.stringify(chart)}`);
    await screenshot(page, 'webinar-phone');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('says it is reconnecting while the service restarts, and is live again after', async () => {
    const { context, page } = await open();
    await page.goto(`${svc.url}/dashboard/webinars/${webinar}#token=${token}`);
    await page.locator('#state[data-state="live"]').waitFor();
    const restarted = svc.restart();
    await page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    assert.match(await text(page, '#state'), /^Reconnecting/);
    assert.match(await text(page, '#as-of'), /^last update \d{2}:\d{2}:\d{2}$/);
    await restarted;
    await page.locator('#state[data-state="live"]').waitFor({ timeout: 20_000 });
    assert.equal(await text(page, '#state'), 'Live');
    const { live } = await read(`/api/webinars/${webinar}/live`);
    assert.equal(live, expectedLive);
    await eventually('the count is the API’s again', async () => (await shown(page, '#live')) === live);
    assert.match(await text(page, '#as-of'), /^as of \d{2}:\d{2}:\d{2}$/);
    await context.close();
  });

  it('opens before anyone joined, and shows the first viewer when they do', async () => {
    const fresh = unique('w-fresh');
    const freshToken = await svc.mint('--webinar', fresh);
    const { context, page } = await open();
    await page.goto(`${svc.url}/dashboard/webinars/${fresh}#token=${freshToken}`);
    await page.locator('#state[data-state="live"]').waitFor();
    assert.equal(await shown(page, '#live'), 0);
    await post([{ type: 'presence', webinar_id: fresh, viewer_id: 'first', action: 'ping' }]);
    await eventually('the first viewer shows', async () => (await shown(page, '#live')) === 1);
    await context.close();
  });

  it('tells a token for another webinar, or none, how to open the page', async () => {
    const other = await svc.mint('--webinar', unique('w-other'));
    const { context, page, sockets } = await open();
    await page.goto(`${svc.url}/dashboard/webinars/${webinar}#token=${other}`);
    await page.locator('#state[data-state="refused"]').waitFor();
    const message = await text(page, '#problem');
    assert.match(message, /does not grant access/);
    assert.match(message, new RegExp(`/dashboard/webinars/${webinar}#token=`));
    assert.match(message, new RegExp(`eventflow token --webinar ${webinar}`));
    assert.ok(await page.locator('#problem').isVisible());
    assert.equal(await page.locator('main > section:visible').count(), 0, 'no empty dashboard under the message');
    assert.deepEqual(sockets, [], 'no WebSocket with a token that does not fit');
    await context.close();

    const bare = await open();
    await bare.page.goto(`${svc.url}/dashboard/webinars/${webinar}`);
    await bare.page.locator('#problem').waitFor();
    assert.match(await text(bare.page, '#problem'), /This page needs a token/);
    await bare.context.close();
  });

  it('is listed on the start page for an admin, and a webinar token goes straight to it', async () => {
    const { context, page } = await open();
    await page.goto(`${svc.url}/#token=${svc.token}`);
    const row = page.locator(`#webinars tr[data-webinar="${webinar}"]`);
    await row.waitFor();
    assert.equal(number(await row.locator('td').nth(1).innerText()), expectedLive);
    assert.equal(page.url(), `${svc.url}/`);
    const href = await row.locator('a').getAttribute('href');
    assert.equal(href, `/dashboard/webinars/${webinar}#token=${encodeURIComponent(svc.token)}`);
    await context.close();

    const scoped = await open();
    await scoped.page.goto(`${svc.url}/#token=${token}`);
    await scoped.page.waitForURL(`${svc.url}/dashboard/webinars/${webinar}`);
    await scoped.page.locator('#state[data-state="live"]').waitFor();
    await scoped.context.close();
  });
});

describe('the webinar dashboard while buckets close', () => {
  // Five-second buckets and no idle lag: buckets close as the test watches.
  let fast;
  before(async () => {
    fast = await startService({ EVENTFLOW__WINDOW__BUCKET_MS: '5000', EVENTFLOW__WINDOW__IDLE_LAG_MS: '0' });
  });
  after(() => fast?.stop());

  it('adds each final bucket to the table and never loses engagement on the way', async () => {
    const webinar = unique('w');
    const token = await fast.mint('--webinar', webinar);
    const send = async (events) => {
      const r = await fetch(`${fast.url}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${fast.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      assert.equal(r.status, 202);
    };
    await send([{ type: 'presence', webinar_id: webinar, viewer_id: 'v1', action: 'ping' }]);
    const { context, page, errors } = await open();
    await page.goto(`${fast.url}/dashboard/webinars/${webinar}#token=${token}`);
    await page.locator('#state[data-state="live"]').waitFor();
    assert.equal(await text(page, '#buckets-empty'), 'No bucket is final yet.');
    const chats = [];
    const sample = setInterval(async () => {
      const t = await page.locator('#engagement [data-kind="chat"]').innerText().catch(() => null);
      if (t && t !== '–') chats.push(number(t));
    }, 100);
    let sent = 0;
    try {
      // A chat a second for twelve seconds: three buckets close meanwhile.
      for (let i = 0; i < 12; i++) {
        await send([
          { type: 'activity', webinar_id: webinar, viewer_id: 'v1', kind: 'chat' },
          { type: 'presence', webinar_id: webinar, viewer_id: `v${i % 3}`, action: 'ping' },
        ]);
        sent += 1;
        await new Promise((r) => setTimeout(r, 1000));
      }
      await eventually('every chat is shown', async () => number(await text(page, '#engagement [data-kind="chat"]')) === sent);
    } finally {
      clearInterval(sample);
    }
    for (let i = 1; i < chats.length; i++) {
      assert.ok(chats[i] >= chats[i - 1], `the chat count went back: ${chats.join(' ')}`);
    }
    const starts = await page.locator('#buckets tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.start)));
    assert.ok(starts.length >= 2, `buckets appeared without a reload: ${starts}`);
    assert.deepEqual(starts, [...starts].sort((a, b) => b - a), 'newest first');
    assert.match(await text(page, '#buckets tbody tr td'), /^\d{2}:\d{2}:\d{2}\s?–\s?\d{2}:\d{2}:\d{2}$/, 'seconds for buckets under a minute');
    assert.equal(await text(page, '.bucket-len'), '5-second');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('the client page', () => {
  const client = unique('c');
  const campaign = unique('cmp');
  const webinar = unique('w');
  const links = [unique('l-news'), unique('l-kakao'), unique('l-ads')];
  let token;

  before(async () => {
    token = await svc.mint('--client', client);
    const visit = (session, link, utm) => ({
      type: 'visit',
      client_id: client,
      campaign_id: campaign,
      webinar_id: webinar,
      session_id: session,
      link_id: link,
      utm,
      path: '/event/landing',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0',
    });
    const conversion = (entry, session, extra = {}) => ({
      type: 'conversion',
      client_id: client,
      campaign_id: campaign,
      entry_id: entry,
      session_id: session,
      webinar_id: webinar,
      viewer_id: `viewer-${entry}`,
      ...extra,
    });
    const news = { source: 'newsletter', medium: 'email', campaign: 'spring' };
    const kakao = { source: 'kakao', medium: 'social', campaign: 'spring' };
    await post([
      visit('s1', links[0], news),
      visit('s2', links[0], news),
      visit('s3', links[0], news),
      visit('s4', links[1], kakao),
      visit('s5', links[1], kakao),
      visit('s6', links[2], { source: 'search', medium: 'cpc', campaign: 'brand' }),
      visit('s7', undefined, undefined),
      { type: 'pageview', path: '/event/landing', method: 'GET', session_id: 's7', client_id: client, campaign_id: campaign, status: 200 },
      { type: 'pageview', path: '/event/landing', method: 'GET', session_id: 's8', client_id: client, campaign_id: campaign, status: 200 },
      conversion('e1', 's1'),
      conversion('e2', 's4'),
      conversion('e3', 's5'),
      conversion('e4', 's7'),
      conversion('e5', undefined, { utm: { source: 'partner' } }),
      { type: 'presence', webinar_id: webinar, viewer_id: 'viewer-e1', action: 'ping' },
      { type: 'presence', webinar_id: webinar, viewer_id: 'viewer-e2', action: 'ping' },
    ]);
    await eventually('the client’s numbers are in', async () => (await read(`/api/clients/${client}/statistics/overview`)).campaigns.conversions === 5);
  });

  /** The page's range, as its inputs say. */
  const rangeOf = async (page) => ({ from: await page.inputValue('#from'), to: await page.inputValue('#to') });

  async function assertNumbers(page) {
    const { from, to } = await rangeOf(page);
    const q = `from=${from}&to=${to}`;
    const [overview, summary, linksRead, webinars] = await Promise.all([
      read(`/api/clients/${client}/statistics/overview?${q}`),
      read(`/api/clients/${client}/campaigns/summary?${q}`),
      read(`/api/clients/${client}/campaigns/links?${q}`),
      read(`/api/clients/${client}/webinars?${q}`),
    ]);
    assert.equal(await shown(page, '#kpi-visits'), overview.campaigns.visits);
    assert.equal(await shown(page, '#kpi-conversions'), overview.campaigns.conversions);
    assert.equal(await text(page, '#kpi-cvr'), overview.campaigns.cvr === null ? '–' : `${oneDecimal.format(overview.campaigns.cvr)} %`);
    assert.equal(await shown(page, '#kpi-campaigns'), overview.campaigns.total);
    for (const [key, value] of Object.entries(overview.quality)) {
      assert.equal(
        await text(page, `#quality [data-rate="${key}"] .rate`),
        value === null ? '–' : `${oneDecimal.format(value)} %`,
        key,
      );
      assert.ok((await text(page, `#quality [data-rate="${key}"] p`)).length > 40, `${key} is explained`);
    }
    const table = (selector) =>
      page.locator(`${selector} tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    const bySource = await table('#by-source');
    if (summary.by_source.length) {
      assert.deepEqual(
        bySource.map(([source, n]) => [source, Number(n)]),
        summary.by_source.map((r) => [r.source, r.conversions]),
      );
    }
    const combos = await table('#by-combination');
    if (summary.by_combination.length) {
      assert.deepEqual(
        combos.map(([s, m, c, n]) => [s, m, c, Number(n)]),
        summary.by_combination.map((r) => [r.source, r.medium, r.campaign, r.conversions]),
      );
    }
    const rows = await table('#links');
    assert.deepEqual(
      rows.map(([link, visits, conversions, cvr]) => [link, number(visits), number(conversions), cvr]).sort(),
      linksRead.links.map((l) => [l.link_id, l.visits, l.conversions, l.cvr === null ? '–' : `${oneDecimal.format(l.cvr)} %`]).sort(),
    );
    const webinarRows = await table('#webinars');
    assert.deepEqual(
      webinarRows.map(([w, live, peak, registrations]) => [w, number(live), number(peak), number(registrations)]),
      webinars.webinars.map((w) => [w.webinar_id, w.live, w.peak_concurrent, w.registrations]),
    );
    return { overview, linksRead };
  }

  it('shows the API’s numbers for the range, sorts links and refetches when the range changes', async () => {
    // The browser's calendar is the service's (UTC), so "the last 30 days" agree.
    const { context, page, requests, errors } = await open(LAPTOP, { timezoneId: 'UTC' });
    await page.goto(`${svc.url}/dashboard/clients/${client}#token=${token}`);
    await page.locator('body[data-loaded]').waitFor();
    assert.equal(page.url(), `${svc.url}/dashboard/clients/${client}`);
    const { from, to } = await rangeOf(page);
    assert.equal((Date.parse(to) - Date.parse(from)) / 86_400_000, 29, 'the last 30 days by default');
    assert.equal(await page.locator('.presets button[data-days="30"]').getAttribute('aria-pressed'), 'true');
    const { overview, linksRead } = await assertNumbers(page);
    assert.equal(overview.campaigns.conversions, 5);
    assert.equal(linksRead.links.length, 3);
    assert.equal(await page.locator(`#webinars a[href^="/dashboard/webinars/${webinar}#token="]`).count(), 1);

    // Sorting the links by conversions: most first, then fewest first.
    const conversions = () =>
      page.locator('#links tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.cells[2].textContent)));
    await page.click('#links th[data-sort="conversions"] button');
    assert.equal(await page.getAttribute('#links th[data-sort="conversions"]', 'aria-sort'), 'descending');
    const down = await conversions();
    assert.deepEqual(down, [...down].sort((a, b) => b - a));
    assert.ok(down[0] > down.at(-1), `conversions differ between links: ${down}`);
    await page.click('#links th[data-sort="conversions"] button');
    assert.equal(await page.getAttribute('#links th[data-sort="conversions"]', 'aria-sort'), 'ascending');
    assert.deepEqual(await conversions(), [...down].reverse());

    assert.ok(!(await overflows(page)), 'no sideways scrolling at 1280×800');
    await screenshot(page, 'client-laptop');

    // Another range: the 7-day preset, then dates typed in.
    const before = requests.length;
    await page.click('.presets button[data-days="7"]');
    const week = await rangeOf(page);
    assert.equal((Date.parse(week.to) - Date.parse(week.from)) / 86_400_000, 6);
    await page.locator(`body[data-loaded="${week.from}/${week.to}"]`).waitFor();
    const asked = requests.slice(before).map((r) => new URL(r.url()));
    for (const path of ['/statistics/overview', '/campaigns/summary', '/campaigns/links', '/webinars']) {
      const r = asked.find((u) => u.pathname === `/api/clients/${client}${path}`);
      assert.ok(r, `${path} read again`);
      assert.deepEqual([r.searchParams.get('from'), r.searchParams.get('to')], [week.from, week.to]);
    }
    assert.equal(new URL(page.url()).searchParams.get('from'), week.from, 'the range is in the address');
    await assertNumbers(page);

    await page.fill('#from', '2020-01-01');
    await page.fill('#to', '2020-01-31');
    await page.locator('#to').dispatchEvent('change');
    await page.locator('body[data-loaded="2020-01-01/2020-01-31"]').waitFor();
    assert.equal(await shown(page, '#kpi-conversions'), 0);
    assert.equal(await text(page, '#kpi-cvr'), '–');
    assert.equal(await page.locator('#links tbody tr').count(), 0);
    assert.ok(await page.locator('#links-empty').isVisible());
    await assertNumbers(page);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('fits a phone, and refuses another client’s token with what to do', async () => {
    const { context, page } = await open(PHONE, { timezoneId: 'UTC' });
    await page.goto(`${svc.url}/dashboard/clients/${client}#token=${token}`);
    await page.locator('body[data-loaded]').waitFor();
    assert.ok(!(await overflows(page)), 'no sideways scrolling at 390×844');
    for (const id of ['#from', '#kpi-visits', '#links', '#quality', '#webinars']) {
      assert.ok(await page.locator(id).isVisible(), `${id} is visible`);
    }
    await screenshot(page, 'client-phone');
    await context.close();

    const other = await open(LAPTOP);
    await other.page.goto(`${svc.url}/dashboard/clients/${client}#token=${await svc.mint('--client', unique('c-other'))}`);
    await other.page.locator('#problem').waitFor();
    assert.match(await text(other.page, '#problem'), /does not grant access/);
    assert.match(await text(other.page, '#problem'), new RegExp(`eventflow token --client ${client}`));
    await other.context.close();
  });

  it('is where the start page sends a client token, with the client’s webinars', async () => {
    const { context, page } = await open(LAPTOP, { timezoneId: 'UTC' });
    await page.goto(`${svc.url}/#token=${token}`);
    const row = page.locator(`#webinars tr[data-webinar="${webinar}"]`);
    await row.waitFor();
    const { webinars } = await read(`/api/clients/${client}/webinars`);
    const w = webinars.find((x) => x.webinar_id === webinar);
    assert.deepEqual(
      (await row.locator('td').allInnerTexts()).slice(1).map(number),
      [w.live, w.peak_concurrent, w.registrations],
    );
    assert.equal(await page.getAttribute('#client-link', 'href'), `/dashboard/clients/${client}#token=${encodeURIComponent(token)}`);
    await screenshot(page, 'index-client-laptop');
    await context.close();
  });
});

after(async () => {
  console.log(`# screenshots: ${await screenshotDir()}`);
});
