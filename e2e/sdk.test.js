// The browser SDK (sdk/eventflow.js) in Chromium, against the running
// service: test pages on a second origin load the SDK from the service, and
// the numbers are read back through the service's read API. Where timing
// matters the page runs on Playwright's fake clock.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { eventually, launchBrowser, pauseClock, service, startPages, startService, unique } from './harness.js';

const MINUTE = 60_000;

let browser;
let pages;

before(async () => {
  [browser, pages] = await Promise.all([launchBrowser(), startPages()]);
});

after(async () => {
  await browser?.close();
  await pages?.close();
});

/**
 * A new page in a context of its own (its own storage), whose test page
 * calls `EventFlow.init(init)` on load; `requests` collects what it sends
 * to the service's API, in order.
 */
async function open(init, { context } = {}) {
  context ??= await browser.newContext();
  const page = await context.newPage();
  if (init) await page.addInitScript((o) => (window.EVENTFLOW_INIT = o), init);
  const requests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/') && r.method() === 'POST') requests.push(r);
  });
  return { context, page, requests };
}

/** The JSON body a request carried. */
const body = (request) => JSON.parse(request.postData());

/** Waits for the next POST to the API whose path ends with `suffix`. */
const nextPost = (page, suffix) =>
  page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith(suffix));

/**
 * Makes the page hidden, as switching tabs does, or visible again (the
 * browser's own state, which a later unload changes as it would).
 */
const setVisibility = (page, state) =>
  page.evaluate((s) => {
    if (s === 'hidden') {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    } else {
      delete document.visibilityState;
      delete document.hidden;
    }
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);

/** Lets the browser deliver what it was about to send, then nothing more. */
const settle = () => new Promise((r) => setTimeout(r, 300));

describe('the SDK file', () => {
  it('is served small, versioned and cacheable', async () => {
    const r = await fetch(`${service.url}/sdk/eventflow.js`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'public, max-age=300');
    assert.match(r.headers.get('etag'), /^"[0-9a-f]+"$/);
    const source = await r.text();
    const gzipped = gzipSync(source, { level: 9 }).length;
    assert.ok(gzipped <= 3072, `sdk/eventflow.js is ${gzipped} bytes gzipped; the bound is 3 KiB`);
    const [, version] = /^\/\*! EventFlow browser SDK (\d+\.\d+\.\d+) /.exec(source) ?? [];
    assert.ok(version, 'the header names the version');

    const { context, page } = await open();
    await page.goto(pages.url('/'));
    assert.equal(await page.evaluate(() => EventFlow.version), version);
    await context.close();
  });
});

describe('a visitor who lands through a campaign link and registers', () => {
  const client = unique('c');
  const campaign = unique('cmp');
  const link = unique('L');
  const init = { clientId: client, campaignId: campaign, allowAutomation: true };
  const utm = { source: 'newsletter', medium: 'email', campaign: 'spring', term: 'webinar', content: 'hero' };
  let page, context, session;

  before(async () => ({ page, context } = await open(init)));
  after(() => context?.close());

  const campaignStats = async () => (await service.get(`/api/clients/${client}/campaigns/${campaign}/stats`)).body;
  const linkStats = async () => (await service.get(`/api/clients/${client}/campaigns/links/${link}/stats`)).body;

  it('sends a visit with the landing URL’s UTM and cid, which the read API counts', async () => {
    const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(utm).map(([k, v]) => [`utm_${k}`, v])), cid: link });
    const visit = nextPost(page, '/visit');
    await page.goto(pages.url(`/event/landing?${query}`));
    const response = await visit;
    assert.equal(response.status(), 202);
    assert.equal(new URL(response.url()).pathname, `/api/public/campaigns/${campaign}/visit`);
    const sent = body(response.request());
    assert.deepEqual(sent.utm, utm);
    assert.equal(sent.cid, link);
    assert.equal(sent.link_id, link);
    assert.equal(sent.client_id, client);
    assert.equal(sent.path, '/event/landing');
    assert.match(sent.session_id, /^[0-9a-f]{32}$/);
    session = sent.session_id;

    await eventually('the visit is counted', async () => (await campaignStats()).total?.visits === 1);
    await eventually('the link visit is counted', async () => (await linkStats()).visits === 1);
  });

  it('keeps the first touch on a page without UTM, and against a later landing', async () => {
    const landing = page.url();
    let visit = nextPost(page, '/visit');
    await page.evaluate(() => location.assign('/event/register'));
    let sent = body((await visit).request());
    assert.deepEqual(sent.utm, utm);
    assert.equal(sent.link_id, link);
    assert.equal(sent.session_id, session);
    assert.equal(sent.path, '/event/register');
    assert.equal(sent.referrer, landing);

    visit = nextPost(page, '/visit');
    await page.goto(pages.url('/event/other?utm_source=ads&utm_medium=cpc&cid=L-other'));
    sent = body((await visit).request());
    assert.deepEqual(sent.utm, utm, 'a fresh first touch is not replaced');
    assert.equal(sent.cid, link);
    assert.equal(sent.session_id, session);

    await eventually('three visits of one session count once', async () => {
      const stats = await campaignStats();
      return stats.total?.visits === 1 && stats;
    });
  });

  it('attributes the conversion to the first touch and the link', async () => {
    const sentConversion = nextPost(page, '/conversion');
    assert.equal(await page.evaluate(() => EventFlow.conversion({ entryId: 'entry-1' })), true);
    const sent = body((await sentConversion).request());
    assert.equal(sent.entry_id, 'entry-1');
    assert.equal(sent.session_id, session);
    assert.equal(sent.link_id, link);
    assert.deepEqual(sent.utm, utm);

    const summary = await eventually('the conversion is counted', async () => {
      const { body } = await service.get(`/api/clients/${client}/campaigns/summary`);
      return body.total_conversions === 1 && body;
    });
    assert.deepEqual(summary.by_source, [{ source: 'newsletter', conversions: 1 }]);
    assert.deepEqual(summary.by_combination, [
      { source: 'newsletter', medium: 'email', campaign: 'spring', conversions: 1 },
    ]);
    assert.equal(summary.attribution.none, 0);
    assert.deepEqual(await linkStats(), { link_id: link, visits: 1, conversions: 1, cvr: 100 });
    const overview = (await service.get(`/api/clients/${client}/statistics/overview`)).body;
    assert.equal(overview.quality.visit_link_rate, 100, 'the conversion is linked to its visit');
  });
});

describe('sessions and first touches on a fake clock', () => {
  it('renews the session after 30 idle minutes, and forgets the first touch after 30 days', async () => {
    const client = unique('c');
    const campaign = unique('cmp');
    const { context, page } = await open({ clientId: client, campaignId: campaign, allowAutomation: true });
    await pauseClock(page);
    const visitNow = async () => {
      const visit = nextPost(page, '/visit');
      assert.equal(await page.evaluate(() => EventFlow.visit()), true);
      return body((await visit).request());
    };

    const first = nextPost(page, '/visit');
    await page.goto(pages.url('/landing?utm_source=kakao&cid=L-k'));
    const s1 = body((await first).request()).session_id;

    await page.clock.fastForward(29 * MINUTE);
    assert.equal((await visitNow()).session_id, s1, '29 idle minutes keep the session');
    await page.clock.fastForward(29 * MINUTE);
    assert.equal((await visitNow()).session_id, s1, 'each visit is activity');
    await page.clock.fastForward(31 * MINUTE);
    const late = await visitNow();
    assert.notEqual(late.session_id, s1, '31 idle minutes start a new session');
    assert.equal(late.utm.source, 'kakao', 'the first touch outlives the session');

    await eventually('two sessions are two visits', async () => {
      const { body } = await service.get(`/api/clients/${client}/campaigns/${campaign}/stats`);
      return body.total?.visits === 2;
    });

    await page.clock.fastForward(30 * 24 * 60 * MINUTE);
    const visit = nextPost(page, '/visit');
    await page.goto(pages.url('/landing'));
    const expired = body((await visit).request());
    assert.equal(expired.utm, undefined, 'a first touch older than 30 days is gone');
    assert.equal(expired.cid, undefined);
    assert.equal(await page.evaluate(() => JSON.stringify(EventFlow.firstTouch())), '{}');
    await context.close();
  });
});

describe('delivery', () => {
  it('retries a visit after a 503 (honouring Retry-After) and a network error, once accepted, never after a 400', async () => {
    const client = unique('c');
    const campaign = unique('cmp');
    const { context, page } = await open({ clientId: client, campaignId: campaign, allowAutomation: true });
    await pauseClock(page);
    const attempts = [];
    let answer = 'unavailable';
    const cors = { 'access-control-allow-origin': pages.origin, 'access-control-expose-headers': 'Retry-After' };
    await page.route(`${service.url}/api/public/campaigns/*/visit`, async (route) => {
      attempts.push(body(route.request()));
      const now = answer;
      if (now === 'unavailable') {
        answer = 'network';
        await route.fulfill({ status: 503, headers: { ...cors, 'retry-after': '7' }, body: '{"error":"busy"}' });
      } else if (now === 'network') {
        answer = 'service';
        await route.abort('connectionreset');
      } else if (now === 'refuse') {
        await route.fulfill({ status: 400, headers: cors, body: '{"error":"session_id: is required"}' });
      } else {
        await route.continue();
      }
    });

    await page.goto(pages.url('/landing?utm_source=ads'));
    await eventually('the first attempt', () => attempts.length === 1);
    await page.clock.runFor(6_900);
    await settle();
    assert.equal(attempts.length, 1, 'no retry before Retry-After (7 s)');
    await page.clock.runFor(200);
    await eventually('the retry after Retry-After', () => attempts.length === 2);
    // After a network error, the second retry waits 1-2 s.
    await page.clock.runFor(2_000);
    await eventually('the retry after the network error', () => attempts.length === 3);
    assert.equal(new Set(attempts.map((a) => a.id)).size, 1, 'every attempt carries one id');
    await eventually('the retried visit is counted', async () => {
      const { body } = await service.get(`/api/clients/${client}/campaigns/${campaign}/stats`);
      return body.total?.visits === 1;
    });

    answer = 'refuse';
    assert.equal(await page.evaluate(() => EventFlow.visit()), false, 'a refused visit resolves false');
    await page.clock.runFor(10 * MINUTE);
    await settle();
    assert.equal(attempts.length, 4, 'a 400 is not retried');
    await context.close();
  });
});

describe('webinar presence', () => {
  it('pings every 60 s while visible, pauses while hidden, and leaves on pagehide', async () => {
    const webinar = unique('w');
    const { context, page, requests } = await open({ webinarId: webinar, viewerId: 'u-1', allowAutomation: true });
    await pauseClock(page);
    const pings = () => requests.filter((r) => r.url().endsWith(`/api/webinars/${webinar}/presence/ping`)).length;
    const live = async () => (await service.get(`/api/webinars/${webinar}/live`)).body.live ?? 0;

    await page.goto(pages.url('/webinar'));
    await eventually('a ping on load', () => pings() === 1);
    await eventually('the viewer is live', async () => (await live()) === 1);
    await page.clock.runFor(59_000);
    await settle();
    assert.equal(pings(), 1, 'no ping before 60 s');
    await page.clock.runFor(1_000);
    await eventually('the ping at 60 s', () => pings() === 2);
    await page.clock.runFor(60_000);
    await eventually('the ping at 120 s', () => pings() === 3);

    await setVisibility(page, 'hidden');
    await page.clock.runFor(5 * MINUTE);
    await setVisibility(page, 'visible');
    await eventually('a ping at once when visible again', () => pings() >= 4);
    await settle();
    assert.equal(pings(), 4, 'none while hidden');
    await page.clock.runFor(60_000);
    await eventually('the cadence resumes', () => pings() === 5);
    const body0 = body(requests.find((r) => r.url().includes('/presence/ping')));
    assert.equal(body0.viewer_id, 'u-1');

    // Leaving the page: the beacon ends the viewer's presence at once
    // (without it the viewer would stay live for presence.ttl_ms). The last
    // ping is answered first, so that it cannot arrive after the leave.
    await Promise.all(requests.map((r) => r.response()));
    assert.equal(await live(), 1);
    await page.goto('about:blank');
    await eventually('the leave beacon ends the presence', async () => (await live()) === 0);
    await context.close();
  });
});

describe('ingest keys', () => {
  it('go in X-EventFlow-Key, and as ?key= on the leave beacon, and a signed service takes them', async () => {
    const signed = await startService({ EVENTFLOW__AUTH__INGEST: 'signed' });
    try {
      const campaign = unique('cmp');
      const webinar = unique('w');
      const keys = {
        campaign: await signed.mint('--ingest', '--campaign', campaign),
        webinar: await signed.mint('--ingest', '--webinar', webinar),
      };
      const { context, page, requests } = await open({
        clientId: unique('c'),
        campaignId: campaign,
        webinarId: webinar,
        viewerId: 'u-2',
        ingestKey: keys,
        allowAutomation: true,
        endpoint: signed.url,
      });
      const visit = nextPost(page, '/visit');
      const ping = nextPost(page, '/presence/ping');
      await page.goto(pages.url('/signed'));
      const [v, p] = await Promise.all([visit, ping]);
      assert.equal(v.status(), 202, 'the campaign key is accepted');
      assert.equal(p.status(), 202, 'the webinar key is accepted');
      assert.equal(await v.request().headerValue('x-eventflow-key'), keys.campaign);
      assert.equal(await p.request().headerValue('x-eventflow-key'), keys.webinar);

      const leave = nextPost(page, '/presence/leave');
      await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide')));
      const l = await leave;
      assert.equal(new URL(l.url()).searchParams.get('key'), keys.webinar);
      assert.equal(l.status(), 202, 'the beacon’s key is accepted');
      assert.equal(requests.length, 3);
      await context.close();
    } finally {
      await signed.stop();
    }
  });
});

describe('what the SDK does not track', () => {
  const campaignSeen = async (client, campaign) =>
    (await service.get(`/api/clients/${client}/campaigns/${campaign}/stats`)).status !== 404;

  it('sends nothing from an automated browser unless allowAutomation is set', async () => {
    const client = unique('c');
    const campaign = unique('cmp');
    const init = { clientId: client, campaignId: campaign, webinarId: unique('w'), viewerId: 'u-3' };
    const { context, page, requests } = await open(init);
    await page.goto(pages.url('/landing?utm_source=newsletter'));
    assert.equal(await page.evaluate(() => navigator.webdriver), true);
    assert.equal(await page.evaluate(() => window.initResult), false);
    assert.equal(await page.evaluate(() => EventFlow.visit()), false);
    assert.equal(await page.evaluate(() => EventFlow.conversion({ entryId: 'e-1' })), false);
    assert.equal(await page.evaluate(() => EventFlow.sessionId()), null);
    await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide')));
    await settle();
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), [], 'nothing stored');
    assert.deepEqual(requests.map((r) => r.url()), [], 'nothing sent');
    assert.equal(await campaignSeen(client, campaign), false);

    // The same page with the option: tracked.
    const visit = nextPost(page, '/visit');
    const on = await page.evaluate((o) => EventFlow.init(o), { ...init, allowAutomation: true, endpoint: service.url });
    assert.equal(on, true);
    assert.equal((await visit).status(), 202);
    await eventually('the visit is counted', () => campaignSeen(client, campaign));
    await context.close();
  });

  it('sends nothing under Do Not Track when respectDnt is set', async () => {
    const client = unique('c');
    const campaign = unique('cmp');
    const init = { clientId: client, campaignId: campaign, allowAutomation: true, respectDnt: true };
    const { context, page, requests } = await open(init);
    await page.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, 'doNotTrack', { configurable: true, get: () => '1' }),
    );
    await page.goto(pages.url('/landing?utm_source=newsletter'));
    assert.equal(await page.evaluate(() => navigator.doNotTrack), '1');
    assert.equal(await page.evaluate(() => window.initResult), false);
    assert.equal(await page.evaluate(() => EventFlow.visit()), false);
    await settle();
    assert.deepEqual(requests.map((r) => r.url()), []);
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), []);
    assert.equal(await campaignSeen(client, campaign), false);

    // Without respectDnt the same browser is tracked.
    const visit = nextPost(page, '/visit');
    assert.equal(await page.evaluate((o) => EventFlow.init({ ...o, respectDnt: false }), { ...init, endpoint: service.url }), true);
    assert.equal((await visit).status(), 202);
    await context.close();
  });
});
