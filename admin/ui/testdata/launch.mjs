// What the dashboard's browser scripts share: the environment, step
// logging, Debian's chromium through playwright-core, and a watch on the
// page's errors. e2e.mjs (the fake API) and real.mjs (a running tern
// serve) import it.

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through go test (./admin/ui/ or ./cmd/tern/)`);
  return v;
};

const started = Date.now();
export const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);

// launch starts TERN_CHROMIUM headless.
export function launch() {
  return chromium.launch({
    executablePath: env('TERN_CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// watchErrors collects the page's uncaught errors and console errors. A
// refused request (401 before the token, 404) is logged by the browser
// itself; anything else is the page's fault.
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|404)/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

// The test's side of a conversation (browsertest.Script): mark prints
// "@@ name" for the Go test; answer waits for its line on stdin.
let lines;
const waiting = [];
const queued = [];

export function mark(name) {
  console.log(`@@ ${name}`);
}

export function answer(want) {
  if (!lines) {
    lines = createInterface({ input: process.stdin });
    lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queued.push(l)));
  }
  const got = queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve));
  return got.then((l) => {
    if (l !== want) throw new Error(`the test said ${JSON.stringify(l)}, want ${JSON.stringify(want)}`);
  });
}

// hangUp stops reading stdin, so that node can exit.
export function hangUp() {
  if (lines) lines.close();
}
