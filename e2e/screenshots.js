// Takes the README's screenshots of the webinar dashboard from a running
// demo: docs/dashboard.png (a laptop, 1280×800) and docs/dashboard-phone.png
// (a phone, 390×844), with Debian's chromium driven by playwright-core, as
// the browser tests do (e2e/harness.js).
//
//   export EVENTFLOW__AUTH__SECRET=$(openssl rand -hex 32)
//   cargo run --release -- demo          # let it run 10 minutes or more
//   # in another terminal, with the same EVENTFLOW__AUTH__SECRET:
//   TOKEN=$(cargo run --release -q -- token --admin) node e2e/screenshots.js
//
// Settings (environment):
//   TOKEN            a token that reads the webinar (required)
//   EVENTFLOW_URL    the service (default http://127.0.0.1:8080)
//   WEBINAR          the webinar shown (default w-keynote)
//   WATCH_SECONDS    how long each page follows the live feed before its
//                    screenshot, so the chart's one-second line has a
//                    length (default 300)
//   OUT              where the PNGs go (default docs/ of this repository)
//   CHROMIUM         the browser (default /usr/bin/chromium)
//
// It waits until the webinar has a final bucket (the demo's first one is
// final a few seconds after the first five minutes of the clock end), so
// the bucket table and the chart's bands have something to show.

import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const base = (process.env.EVENTFLOW_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const token = process.env.TOKEN;
const webinar = process.env.WEBINAR || 'w-keynote';
const watch = Number(process.env.WATCH_SECONDS || 300) * 1000;
const out = process.env.OUT || join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');

if (!token) {
  console.error('screenshots: set TOKEN to a token that reads the webinar (eventflow token --admin)');
  process.exit(2);
}

/** Resolves once the webinar has a final 5-minute bucket. */
async function finalBucket() {
  const url = `${base}/api/webinars/${encodeURIComponent(webinar)}/stats/access?interval=5m`;
  for (let said = false; ; said = true) {
    const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 401 || r.status === 403) {
      throw new Error(`the token cannot read ${webinar}: ${await r.text()}`);
    }
    if (r.ok && (await r.json()).buckets.length > 0) return;
    if (!said) console.log(`screenshots: waiting for ${webinar}'s first final bucket…`);
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

const sizes = [
  { file: 'dashboard.png', viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 },
  {
    file: 'dashboard-phone.png',
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  },
];

await finalBucket();
await mkdir(out, { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
try {
  await Promise.all(
    sizes.map(async ({ file, ...options }) => {
      const context = await browser.newContext({ ...options, colorScheme: 'light' });
      const page = await context.newPage();
      await page.goto(`${base}/dashboard/webinars/${encodeURIComponent(webinar)}#token=${token}`);
      await page.waitForSelector('#state[data-state="live"]');
      await page.waitForSelector('#buckets tbody tr');
      await page.waitForTimeout(watch);
      const path = join(out, file);
      await page.screenshot({ path });
      console.log(`screenshots: ${path}`);
      await context.close();
    }),
  );
} finally {
  await browser.close();
}
