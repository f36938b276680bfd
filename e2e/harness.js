// What every end-to-end test runs against. scripts/e2e builds the service,
// starts it and sets the environment read here:
//
//   EVENTFLOW_URL    the running service (embedded mode, its own data dir)
//   EVENTFLOW_TOKEN  an admin token for its read API
//   EVENTFLOW_BIN    the binary, for tests that need a service of their own
//   E2E_PAGE_PORT    the port of the test pages' origin, which the service
//                    lists in http.allowed_origins
//   CHROMIUM         the browser (default /usr/bin/chromium)
//
//   E2E_SCREENSHOTS  where tests save screenshots (default: a new
//                    temporary directory, named in the test output)
//
// Tests get the service (`service`), a page server on a second origin
// (`startPages`), a browser (`launchBrowser`), a clock that stands still
// (`pauseClock`), extra services with other settings that can be restarted
// (`startService`), `eventually` to wait for a condition, and a directory
// for screenshots (`screenshotDir`).

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

if (!process.env.EVENTFLOW_URL || !process.env.E2E_PAGE_PORT) {
  throw new Error('run the end-to-end tests with scripts/e2e, which starts the service they need');
}

/** A running service and a token for its read API. */
export class Service {
  constructor(url, token) {
    this.url = url;
    this.token = token;
  }

  /** GET `path` with the token: `{status, body}` (body parsed as JSON). */
  async get(path) {
    const r = await fetch(this.url + path, { headers: { authorization: `Bearer ${this.token}` } });
    const text = await r.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: r.status, body, headers: r.headers };
  }
}

/** The service scripts/e2e started. */
export const service = new Service(process.env.EVENTFLOW_URL, process.env.EVENTFLOW_TOKEN);

/** The origin of the test pages: another host than the service's. */
export const pageOrigin = `http://localhost:${process.env.E2E_PAGE_PORT}`;

/** A fresh identifier for this run, so tests sharing the service never meet. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Polls `check` until it returns something other than undefined, null or
 * false, and returns that; fails after `ms` with `what` and the last value
 * seen. Waits for a condition, never for a fixed time.
 */
export async function eventually(what, check, ms = 10_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last !== undefined && last !== null && last !== false) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting until ${what}; last: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Serves test pages on `pageOrigin`: any path is an HTML page that loads
 * the SDK from the service and, when the page defines
 * `window.EVENTFLOW_INIT` (tests do with `page.addInitScript`), calls
 * `EventFlow.init({endpoint: <the service>, ...EVENTFLOW_INIT})`, keeping
 * what it returned in `window.initResult`. `close()` stops it.
 */
export async function startPages() {
  const page = (endpoint) => `<!doctype html>
<meta charset="utf-8"><title>EventFlow test page</title>
<script src="${endpoint}/sdk/eventflow.js"></script>
<script>
  window.initResult = window.EVENTFLOW_INIT
    ? EventFlow.init(Object.assign({ endpoint: ${JSON.stringify(endpoint)} }, window.EVENTFLOW_INIT))
    : null;
</script>
<p>A page of a campaign.</p>`;
  const server = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page(service.url));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(process.env.E2E_PAGE_PORT), '127.0.0.1', resolve);
  });
  return {
    origin: pageOrigin,
    url: (path) => pageOrigin + path,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Gives `page` a fake clock that stands still (from now on, across
 * navigations) until the test moves it with `page.clock.runFor` or
 * `fastForward`. (`page.clock.install` alone lets time flow.)
 */
export async function pauseClock(page) {
  const now = Date.now();
  await page.clock.install({ time: now });
  await page.clock.pauseAt(now + 1000);
}

/** Debian's chromium, headless, driven by playwright-core. */
export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
}

/**
 * Starts another service (embedded mode, a temporary data directory, the
 * page origin allowed) with `env` added to its environment
 * (`EVENTFLOW__SECTION__KEY` settings), and waits until it is ready.
 * Returns a Service with `mint(...args)` (runs `eventflow token ...` with
 * its secret), `restart()` (stops it as an operator would, with SIGTERM,
 * and starts it again on the same address and data; resolves once it is
 * ready again) and `stop()`.
 */
export async function startService(env = {}) {
  const bin = process.env.EVENTFLOW_BIN;
  const dir = await mkdtemp(join(tmpdir(), 'eventflow-e2e-'));
  const fullEnv = {
    ...process.env,
    EVENTFLOW__HTTP__ADDR: '127.0.0.1:0',
    EVENTFLOW__HTTP__ALLOWED_ORIGINS: JSON.stringify([pageOrigin]),
    EVENTFLOW__HTTP__RATE_LIMIT_PER_SEC: '0',
    EVENTFLOW__LIMITS__NEW_ENTITIES_PER_MINUTE: '0',
    EVENTFLOW__WINDOW__IDLE_LAG_MS: '0',
    EVENTFLOW__DATA__DIR: join(dir, 'data'),
    EVENTFLOW__AUTH__SECRET: randomBytes(32).toString('hex'),
    ...env,
  };
  let child = null;
  let exited = Promise.resolve();
  const halt = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // Runs the service on `addr` until it prints its address; that address.
  const launch = (addr) => {
    const running = spawn(bin, ['serve'], {
      env: { ...fullEnv, EVENTFLOW__HTTP__ADDR: addr },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = running;
    let stderr = '';
    running.stderr.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => running.once('exit', resolve));
    return new Promise((resolve, reject) => {
      let stdout = '';
      running.stdout.on('data', (d) => {
        stdout += d;
        const m = /Dashboard: (http:\/\/[0-9.]+:[0-9]+)\//.exec(stdout);
        if (m) resolve(m[1]);
      });
      running.once('exit', (code) => reject(new Error(`the service exited (${code}):\n${stderr}`)));
    });
  };
  const ready = (url) => eventually('the service is ready', async () => (await fetch(url + '/readyz')).ok);
  const stop = async () => {
    await halt();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const url = await launch(fullEnv.EVENTFLOW__HTTP__ADDR);
    const mint = async (...args) => {
      const { stdout } = await promisify(execFile)(bin, ['token', ...args], { env: fullEnv });
      return stdout.trim();
    };
    const started = new Service(url, await mint('--admin'));
    started.mint = mint;
    started.stop = stop;
    started.restart = async () => {
      await halt();
      await launch(new URL(url).host);
      await ready(url);
    };
    await ready(url);
    return started;
  } catch (e) {
    await stop();
    throw e;
  }
}

let screenshots;

/** The directory screenshots go to (E2E_SCREENSHOTS, or one made once per run). */
export async function screenshotDir() {
  screenshots ??= process.env.E2E_SCREENSHOTS
    ? mkdir(process.env.E2E_SCREENSHOTS, { recursive: true }).then(() => process.env.E2E_SCREENSHOTS)
    : mkdtemp(join(tmpdir(), 'eventflow-screenshots-'));
  return screenshots;
}
