// The API reference page (/docs) in Chromium: it renders every operation
// of /openapi.json under its own Content-Security-Policy, loading nothing
// but the service's own files.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, service } from './harness.js';

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

describe('the API reference page', () => {
  it('renders every operation and schema, with no error and nothing from elsewhere', async () => {
    const spec = await (await fetch(`${service.url}/openapi.json`)).json();
    const operations = Object.values(spec.paths).flatMap((item) =>
      ['get', 'put', 'post', 'delete', 'patch'].filter((m) => item[m])
    );
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    const origins = new Set();
    page.on('request', (r) => origins.add(new URL(r.url()).origin));

    await page.goto(`${service.url}/docs`);
    await page.waitForSelector('section.op');
    assert.equal(await page.textContent('h1 >> nth=0').then((t) => t.startsWith(spec.info.title)), true);
    assert.equal(await page.locator('.tag > section.op[id^="op-"]').count(), operations.length);
    assert.equal(
      await page.locator('#schemas > section.op').count(),
      Object.keys(spec.components.schemas).length
    );
    // A batch's body names its records' schema, which opens on demand.
    const batch = page.locator('#op-post-api-events');
    assert.match(await batch.textContent(), /application\/x-ndjson/);
    assert.match(await batch.textContent(), /EventRecord/);
    assert.doesNotMatch(await page.textContent('#main'), /\[object |undefined/);
    assert.deepEqual(errors, []);
    assert.deepEqual([...origins], [service.url]);
    await page.context().close();
  });
});
