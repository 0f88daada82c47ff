// The dashboard against a running `tern serve`, run by cmd/tern's
// TestDashboardEndToEnd with the addresses in the environment. The Go
// test runs `tern sub` and `tern pub` beside it; the two sides take turns
// through marks ("@@ kicked" on stdout) and answers (a line on stdin).
//
//   TERN_UI_URL      the dashboard: the admin server's /
//   TERN_TOKEN       the admin token (admin.token)
//   TERN_MQTT_ADDR   the TCP listener's address
//   TERN_WS_URL      the ws URL the page should pick from /api/v1/info
//   TERN_CLIENT      the client id of the `tern sub` to kick
//   TERN_TOPIC       the topic to publish on, one `tern sub` is subscribed to
//   TERN_RETAINED    the topic of the retained message `tern pub -r` sends
//   TERN_CHROMIUM    the browser binary

import assert from 'node:assert/strict';
import { answer, env, hangUp, launch, mark, step, watchErrors } from './launch.mjs';

const UI = env('TERN_UI_URL');
const TOKEN = env('TERN_TOKEN');
const MQTT_ADDR = env('TERN_MQTT_ADDR');
const WS = env('TERN_WS_URL');
const CLIENT = env('TERN_CLIENT');
const TOPIC = env('TERN_TOPIC');
const RETAINED = env('TERN_RETAINED');

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const text = (sel) => page.locator(sel).innerText();

  // -- overview: the broker's own figures and listeners --
  await page.goto(UI);
  await page.locator('h1', { hasText: 'Overview' }).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-stat="connections"] .value')?.textContent === '1');
  assert.equal(await text('[data-stat="subscriptions"] .value'), '1');
  await page.locator('#server-info table', { hasText: MQTT_ADDR }).waitFor();
  assert.match(await text('#server-info table'), /tcp/);
  assert.match(await text('#server-info table'), /ws/);
  assert.equal(await page.locator('#cluster').isHidden(), true, 'a single node shows no cluster');
  step('overview: one connection, one subscription, the listeners, no cluster');

  // -- clients: tern sub is there; Kick asks for the token --
  await page.getByRole('link', { name: 'Clients', exact: true }).click();
  const row = page.locator('#main tbody tr', { has: page.locator('th', { hasText: CLIENT }) });
  await row.waitFor();
  assert.match(await row.innerText(), /connected/);
  assert.match(await row.innerText(), /3\.1\.1/);
  assert.match(await row.innerText(), /127\.0\.0\.1:\d+/);
  await page.getByRole('button', { name: `Kick ${CLIENT}` }).click();
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.getByLabel('Token', { exact: true }).fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.locator('#notice', { hasText: `Disconnected ${CLIENT}.` }).waitFor();
  await dialog.waitFor({ state: 'hidden' });
  // A clean session ends with its connection: the list has no row for it.
  await row.waitFor({ state: 'detached' });
  await page.locator('#main table caption', { hasText: /^0 clients$/ }).waitFor();
  step(`clients: ${CLIENT} listed, kicked with the token, gone`);

  mark('kicked');
  await answer('subscribed again');

  // -- the second tern sub, found by searching --
  await page.getByLabel('Search client id, user name or address').fill(CLIENT);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('#main table caption', { hasText: `1 client matching “${CLIENT}”` }).waitFor();
  assert.match(await row.innerText(), /connected/);
  step(`clients: ${CLIENT} back`);

  // -- publish through the API to tern sub --
  await page.getByRole('link', { name: 'Publish & subscribe' }).click();
  assert.equal(await page.getByLabel('WebSocket URL').inputValue(), WS, 'the ws URL, path included, comes from /api/v1/info');
  await page.getByLabel('Topic', { exact: true }).fill(TOPIC);
  await page.getByLabel('Payload (text)').fill('hello from the dashboard');
  await page.getByLabel('QoS', { exact: true }).first().selectOption('1');
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  await page.locator('#notice', { hasText: `Published to ${TOPIC}.` }).waitFor();
  step(`publish: posted to ${TOPIC}`);

  mark('published');
  await answer('retained');

  // -- the retained message tern pub -r left, in the topic tree --
  await page.getByRole('link', { name: 'Retained', exact: true }).click();
  const tree = page.locator('#retained-tree');
  const levels = RETAINED.split('/');
  for (const level of levels.slice(0, -1)) await tree.locator('summary', { hasText: level }).first().waitFor();
  await page.getByRole('button', { name: `View ${RETAINED}`, exact: true }).click();
  await page.locator('#retained-view h2', { hasText: RETAINED }).waitFor();
  assert.equal(await text('#retained-view pre.payload'), 'door open');
  assert.match(await text('#retained-view .facts'), /QoS\s+1/);
  step(`retained: ${RETAINED} in the tree, its payload shown`);

  assert.deepEqual(errors, [], 'no errors in the page');
}

async function main() {
  const browser = await launch();
  try {
    await run(browser);
  } finally {
    hangUp();
    await browser.close();
  }
}

main().then(() => step('ok'), (e) => {
  console.error(e);
  process.exit(1);
});
