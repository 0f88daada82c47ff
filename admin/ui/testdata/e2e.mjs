// The dashboard's browser test, run by TestBrowser (browser_test.go) with
// the URLs in the environment: Debian's chromium, headless, driven by
// playwright-core through every page against the fake admin API, and the
// subscribe panel against a real broker's WebSocket listener.
//
//   TERN_UI_URL      the dashboard (fake API + ui.Files)
//   TERN_WS_URL      the ws URL the page should pick from /api/v1/info
//   TERN_CHROMIUM    the browser binary
//   TERN_TOKEN       the admin token the fake API wants for changes
//   TERN_SCREENSHOT  where to save the overview screenshot
//   TERN_SCREENSHOT_POINTS  samples in the charts before it (default 3)
//   TERN_CODEC       JSON {name: hex} of packets from the Go encoder
//   TERN_SHOTS       optional: a directory for a screenshot of every step

import assert from 'node:assert/strict';
import * as mqtt from '../static/mqtt.js';
import { env, launch, step, watchErrors } from './launch.mjs';

const UI = env('TERN_UI_URL');
const WS = env('TERN_WS_URL');
const TOKEN = env('TERN_TOKEN');

// ---- the page's MQTT codec, byte for byte against the Go encoder ----

function codec() {
  const want = JSON.parse(env('TERN_CODEC'));
  const hex = (b) => Buffer.from(b).toString('hex');
  const got = {
    connect: mqtt.encodeConnect({ clientId: 'codec', keepAlive: 30 }),
    'connect-auth': mqtt.encodeConnect({ clientId: 'zé', keepAlive: 65535, username: 'user', password: 'pässword' }),
    subscribe: mqtt.encodeSubscribe(10, [{ filter: 'a/+/c', qos: 1 }, { filter: '#', qos: 2 }]),
    unsubscribe: mqtt.encodeUnsubscribe(65535, ['a/+/c']),
    'publish-short': mqtt.encodePublish({ topic: 't', payload: 'x'.repeat(124) }),
    'publish-128': mqtt.encodePublish({ topic: 't', payload: 'x'.repeat(125) }),
    'publish-16384': mqtt.encodePublish({ topic: 't/ü', retain: true, payload: 'y'.repeat(16384 - 6) }),
    puback: mqtt.encodeAck(mqtt.PUBACK, 258),
    pubrec: mqtt.encodeAck(mqtt.PUBREC, 7),
    pubcomp: mqtt.encodeAck(mqtt.PUBCOMP, 7),
    pingreq: mqtt.pingreq(),
    disconnect: mqtt.disconnect(),
  };
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [name, b] of Object.entries(got)) assert.equal(hex(b), want[name], `${name} encodes as the Go codec does`);

  // Remaining Length boundaries from the spec's table [MQTT-2.2.3].
  for (const [n, bytes] of [[0, [0]], [127, [0x7f]], [128, [0x80, 0x01]], [16383, [0xff, 0x7f]], [16384, [0x80, 0x80, 0x01]],
    [2097151, [0xff, 0xff, 0x7f]], [2097152, [0x80, 0x80, 0x80, 0x01]], [268435455, [0xff, 0xff, 0xff, 0x7f]]]) {
    assert.deepEqual([...mqtt.encodeLength(n)], bytes, `remaining length ${n}`);
  }
  assert.throws(() => mqtt.encodeLength(268435456));

  // The decoder joins packets split across frames and splits packets
  // sharing one.
  const pub = mqtt.encodePublish({ topic: 'a/b', payload: 'z'.repeat(300), qos: 1, id: 9 });
  const both = new Uint8Array([...pub, ...mqtt.encodeAck(mqtt.PUBACK, 3)]);
  const d = new mqtt.Decoder();
  const got1 = [];
  for (let i = 0; i < both.length; i += 7) got1.push(...d.push(both.subarray(i, i + 7)));
  assert.equal(got1.length, 2);
  const m = mqtt.decodePublish(got1[0].flags, got1[0].body);
  assert.equal(m.topic, 'a/b');
  assert.equal(m.qos, 1);
  assert.equal(m.id, 9);
  assert.equal(m.payload.length, 300);
  assert.equal(got1[1].type, mqtt.PUBACK);
  assert.throws(() => new mqtt.Decoder().push(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01)));
  step('codec: matches the Go encoder');
}

// ---- the browser ----

async function main() {
  codec();
  const browser = await launch();
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const confirms = [];
  page.on('dialog', (d) => {
    confirms.push(d.message());
    d.accept();
  });
  const text = (sel) => page.locator(sel).innerText();
  let shots = 0;
  const snap = async (name) => {
    if (process.env.TERN_SHOTS) await page.screenshot({ path: `${process.env.TERN_SHOTS}/${String(++shots).padStart(2, '0')}-${name}.png`, fullPage: true });
  };

  // -- overview: numbers, then charts with points drawn --
  await page.goto(UI);
  await page.locator('h1', { hasText: 'Overview' }).waitFor();
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-stat="connections"] .value')?.textContent || ''));
  assert.equal(await text('[data-stat="connections"] .value'), '59');
  assert.equal(await text('[data-stat="sessions"] .value'), '60');
  await page.waitForFunction(() => Number(document.getElementById('chart-messages')?.dataset.points) >= 2, null, { timeout: 8000 });
  const inked = await page.evaluate(() => ['chart-connections', 'chart-messages', 'chart-bytes'].map((id) => {
    const c = document.getElementById(id);
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let blue = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 100 && px[i + 2] > px[i] + 80) blue++;
    return blue;
  }));
  for (const n of inked) assert.ok(n > 12, `every chart draws its line (blue pixels: ${inked})`);
  assert.match(await text('[data-stat="msg-in"] .value'), /^[\d,.]+$/);
  assert.match(await page.locator('#chart-messages').getAttribute('aria-label'), /in [\d,.]+, out [\d,.]+/);
  await page.locator('#server-info', { hasText: 'v0.9.0-e2e' }).waitFor();
  assert.match(await text('#server-info'), new RegExp(WS.replace(/^ws:\/\//, '').replace(/\/mqtt$/, '').replace(/\./g, '\\.')));
  await page.locator('#cluster', { hasText: 'edge-3' }).waitFor();
  assert.match(await text('#cluster'), /edge-1 \(this node\)/);
  assert.match(await text('#cluster'), /Nodes \(3\)/);
  assert.match(await text('#cluster'), /120,345/);
  step('overview: figures, three charts drawn, the cluster\'s nodes');
  await snap('overview');

  // -- keyboard: the first Tab reaches the skip link, Enter moves focus to main --
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');

  // -- clients: paging, search, Kick (token form on the 401) --
  await page.getByRole('link', { name: 'Clients', exact: true }).click();
  await page.locator('h1', { hasText: 'Clients' }).waitFor();
  await page.locator('#main table caption', { hasText: '60 clients' }).waitFor();
  assert.equal(await page.locator('#main tbody tr').count(), 50);
  assert.equal(await text('.pager .range'), '1–50 of 60');
  await page.getByRole('button', { name: 'Next ›' }).click();
  await page.locator('.pager .range', { hasText: '51–60 of 60' }).waitFor();
  assert.equal(await page.locator('#main tbody tr').count(), 10);
  await page.getByLabel('Search client id, user name or address').fill('sensor');
  await page.locator('#main table caption', { hasText: '2 clients matching “sensor”' }).waitFor();
  assert.deepEqual(await page.locator('#main tbody th').allInnerTexts(), ['sensor-1', 'sensor-2']);
  await page.getByLabel('Search client id, user name or address').fill('alice'); // user names match too
  await page.locator('#main table caption', { hasText: '1 client matching' }).waitFor();
  await page.getByLabel('Search client id, user name or address').fill('sensor');
  await page.locator('#main table caption', { hasText: '2 clients' }).waitFor();
  step('clients: paged and searched');
  await snap('clients');

  await page.getByRole('button', { name: 'Kick sensor-1' }).click();
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.getByLabel('Token', { exact: true }).fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.locator('#notice', { hasText: 'Disconnected sensor-1.' }).waitFor();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('tern.admin.token')), TOKEN);
  await page.getByRole('button', { name: 'Delete session sensor-1' }).waitFor(); // offline now, persistent
  assert.equal(await page.locator('#token-button').innerText(), 'Forget token');
  step('clients: Kick asked for the token and sent the POST');
  await snap('clients');

  // -- client detail --
  await page.getByRole('link', { name: 'sensor-2' }).click();
  await page.locator('h1', { hasText: 'Client sensor-2' }).waitFor();
  await page.locator('.facts', { hasText: 'bob' }).waitFor();
  assert.match(await text('.facts'), /3\.1\.1/);
  assert.match(await text('#main table'), /home\/#/);
  await page.getByRole('link', { name: '‹ Clients' }).click();
  await page.locator('h1', { hasText: 'Clients' }).waitFor();
  // The offline session of archiver: its detail page deletes it.
  await page.goto(`${UI}#/clients/archiver`);
  await page.locator('.facts', { hasText: 'offline' }).waitFor();
  await page.getByRole('button', { name: 'Delete session archiver' }).click();
  await page.locator('#notice', { hasText: 'Deleted the session of archiver.' }).waitFor();
  await page.locator('h1', { hasText: 'Clients' }).waitFor(); // back to the list
  await page.goto(`${UI}#/clients/archiver`);
  await page.locator('#main .error', { hasText: 'No such client' }).waitFor();
  // A % that is no escape names the id as typed; the page still routes.
  await page.goto(`${UI}#/clients/50%`);
  await page.locator('h1', { hasText: 'Client 50%' }).waitFor();
  step('client detail: facts, subscriptions, delete session');
  await snap('client-detail');

  // -- subscriptions --
  await page.getByRole('link', { name: 'Subscriptions', exact: true }).click();
  await page.locator('#main table caption', { hasText: '3 subscriptions' }).waitFor(); // archiver's went with its session
  await page.getByLabel('Filter contains').fill('cmd');
  await page.locator('#main table caption', { hasText: '1 subscription' }).waitFor();
  assert.match(await text('#main tbody'), /sensor-1\s+cmd\/sensor-1\/#\s+2\s+yes/);
  step('subscriptions: listed and filtered');
  await snap('subscriptions');

  // -- retained: tree, view text and binary, delete --
  await page.getByRole('link', { name: 'Retained', exact: true }).click();
  const tree = page.locator('#retained-tree');
  await tree.locator('summary', { hasText: 'home' }).first().waitFor();
  assert.match(await tree.innerText(), /5 retained messages/);
  await page.getByRole('button', { name: 'View home/kitchen/temp' }).click();
  await page.locator('#retained-view h2', { hasText: 'home/kitchen/temp' }).waitFor();
  assert.equal(await text('#retained-view pre.payload'), '21.5');
  assert.match(await text('#retained-view .facts'), /text\/plain/);
  await page.getByRole('button', { name: 'View devices/cam-1/firmware' }).click();
  await page.locator('#retained-view pre.payload', { hasText: '7f 45 4c 46 ff 00 10' }).waitFor();
  await page.getByRole('button', { name: 'View home', exact: true }).click(); // a topic that is also a branch
  await page.locator('#retained-view pre.payload', { hasText: 'the house' }).waitFor();
  await page.getByRole('button', { name: 'View home/door' }).click();
  await page.locator('#retained-view pre.payload', { hasText: 'open' }).waitFor();
  await page.getByRole('button', { name: 'Delete retained message' }).click();
  await page.locator('#notice', { hasText: 'Deleted the retained message on home/door.' }).waitFor();
  await tree.locator('p.hint', { hasText: '4 retained messages' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'View home/door' }).count(), 0);
  assert.ok(confirms.some((m) => m.includes('home/door')), 'deleting asked first');
  step('retained: tree, text and binary payloads, delete');
  await snap('retained');

  // -- publish through the API --
  await page.getByRole('link', { name: 'Publish & subscribe' }).click();
  await page.getByLabel('Topic', { exact: true }).fill('e2e/api');
  await page.getByLabel('Payload (text)').fill('from the API');
  await page.getByLabel('QoS', { exact: true }).first().selectOption('1');
  await page.getByLabel('Retain').check();
  await page.getByLabel('Content type (MQTT 5 receivers)').fill('text/plain');
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  await page.locator('#notice', { hasText: 'Published to e2e/api.' }).waitFor();
  step('publish: posted');
  await snap('publish');

  // -- subscribe over WebSocket to the real broker --
  assert.equal(await page.getByLabel('WebSocket URL').inputValue(), WS, 'the ws URL comes from /api/v1/info');
  await page.locator('summary', { hasText: 'Connection options' }).click();
  await page.getByLabel('Keep alive (seconds)').fill('2');
  await page.getByLabel('Client ID').fill('dashboard-e2e');
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await page.locator('#ws-state', { hasText: 'connected as dashboard-e2e' }).waitFor();
  await page.getByLabel('Topic filter').fill('e2e/ws/#');
  await page.locator('#sub-qos').selectOption('1');
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await page.locator('#sub-list', { hasText: 'e2e/ws/# QoS 1' }).waitFor();
  step('subscribe: connected and subscribed; waiting for the broker');
  await snap('subscribe');
  const log = page.locator('#ws-log');
  await log.locator('li', { hasText: 'hello over websocket' }).waitFor({ timeout: 15000 });
  assert.match(await log.locator('li').first().innerText(), /e2e\/ws\/zero[\s\S]*QoS 0/);
  await log.locator('li', { hasText: 'still here after a keep alive' }).waitFor({ timeout: 15000 });
  assert.match(await log.locator('li').first().innerText(), /e2e\/ws\/one[\s\S]*QoS 1/);
  assert.match(await text('#ws-state'), /^connected/, 'still connected after keep alive periods (PINGREQ)');
  step('subscribe: both messages arrived, the connection outlived its keep alive');
  await snap('subscribe');

  await page.getByLabel('Topic', { exact: true }).fill('e2e/from-page');
  await page.getByLabel('Payload (text)').fill('hello from the page');
  await page.getByLabel('Retain').uncheck();
  await page.getByRole('button', { name: 'Publish over WebSocket (QoS 0)' }).click();
  await page.locator('#notice', { hasText: 'Sent to e2e/from-page over WebSocket.' }).waitFor();
  await page.getByRole('button', { name: 'Unsubscribe e2e/ws/#' }).click();
  await page.locator('#sub-list li').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Disconnect', exact: true }).click();
  await page.locator('#ws-state', { hasText: 'disconnected' }).waitFor();
  step('publish over WebSocket sent; unsubscribed and disconnected');
  await snap('publish-over-websocket');

  // -- a phone's width: nothing wider than the screen --
  await page.setViewportSize({ width: 390, height: 844 });
  for (const r of ['overview', 'clients', 'retained', 'pubsub']) {
    await page.goto(`${UI}#/${r}`);
    await page.locator('h1').waitFor();
    await page.waitForTimeout(150);
    await snap(`phone-${r}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `#/${r} is ${wide}px wide on a 390px screen`);
  }
  step('phone width: no sideways scrolling');

  // -- the screenshot: the overview with a few samples in its charts --
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto(`${UI}#/overview`); // the same document: the charts keep their history
  const points = Number(process.env.TERN_SCREENSHOT_POINTS || 3);
  await page.waitForFunction((n) => Number(document.getElementById('chart-messages')?.dataset.points) >= n, points, { timeout: 4000 + points * 2000 });
  await page.waitForTimeout(100);
  await page.screenshot({ path: env('TERN_SCREENSHOT') });
  step(`screenshot: ${env('TERN_SCREENSHOT')}`);

  assert.deepEqual(errors, [], 'no errors in the page');
}

main().then(() => step('ok'), (e) => {
  console.error(e);
  process.exit(1);
});
