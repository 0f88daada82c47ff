// The Tern dashboard: hash routes over the admin REST API (/api/v1/) and
// an MQTT-over-WebSocket subscribe panel. Plain DOM, no framework; every
// value from the server goes into textContent, never into HTML.

import { Client } from './mqtt.js';

const POLL_MS = 2000;
const HISTORY = 180; // samples kept for the charts: six minutes at 2 s
const PAGE = 50;
const TOKEN_KEY = 'tern.admin.token';

const $ = (sel, root = document) => root.querySelector(sel);
const main = $('#main');

// h builds an element: attrs are properties (on*, class, dataset...) or
// attributes; children are nodes, strings or arrays of them (null skipped).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// ---- formatting ----

const nf = new Intl.NumberFormat('en');
const nf1 = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const num = (n) => (n == null || Number.isNaN(n) ? '–' : nf.format(n));
const rate = (n) => (n == null ? '–' : nf1.format(n));

function bytes(n) {
  if (n == null || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? nf.format(Math.round(n)) : nf1.format(n)} ${units[i]}`;
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h ${m}m`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function when(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

const versions = { 3: '3.1', 4: '3.1.1', 5: '5.0' };
const yes = (b) => (b ? 'yes' : 'no');

function hex(b, max = 256) {
  const out = [];
  for (let i = 0; i < Math.min(b.length, max); i++) out.push(b[i].toString(16).padStart(2, '0'));
  return out.join(' ') + (b.length > max ? ' …' : '');
}

function fromBase64(s) {
  const bin = atob(s || '');
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

// ---- notices ----

const notice = $('#notice');
let noticeTimer;

function say(msg, kind = 'info') {
  notice.textContent = msg;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (kind !== 'error') noticeTimer = setTimeout(() => { notice.hidden = true; }, 5000);
}

// ---- the API and its token ----

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let prompting = null; // one token form at a time, shared by every caller
const tokenButton = $('#token-button');

function showTokenState() {
  tokenButton.textContent = token ? 'Forget token' : 'Sign in';
}

function askToken(reason) {
  if (prompting) return prompting;
  const dialog = $('#token-dialog');
  const input = $('#token-input');
  $('#token-reason').textContent = reason;
  input.value = '';
  prompting = new Promise((resolve) => {
    const done = (t) => {
      form.removeEventListener('submit', submit);
      cancel.removeEventListener('click', dismiss);
      dialog.removeEventListener('cancel', dismiss);
      if (dialog.open) dialog.close();
      prompting = null;
      resolve(t);
    };
    const form = $('#token-form');
    const cancel = $('#token-cancel');
    const submit = (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      token = t;
      sessionStorage.setItem(TOKEN_KEY, t);
      showTokenState();
      done(t);
    };
    const dismiss = (ev) => {
      ev.preventDefault();
      done(null);
    };
    form.addEventListener('submit', submit);
    cancel.addEventListener('click', dismiss);
    dialog.addEventListener('cancel', dismiss);
    dialog.showModal();
    input.focus();
  });
  return prompting;
}

tokenButton.addEventListener('click', async () => {
  if (token) {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    say('Token forgotten.');
  } else if (await askToken('Enter the admin token.')) {
    say('Token saved for this tab.');
  }
});

// api calls the admin API; on 401 it asks for the token (unless quiet)
// and tries once more with it.
async function api(method, path, { body, quiet = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    if (res.status === 401 && attempt < 2 && !quiet) {
      const t = await askToken(token ? 'The token was refused; enter the admin token.' : 'This needs the admin token.');
      if (t) continue;
      throw new APIError(401, 'not signed in');
    }
    const ct = res.headers.get('Content-Type') || '';
    const data = res.status === 204 ? null : ct.includes('json') ? await res.json().catch(() => null) : await res.text();
    if (!res.ok) {
      const msg = (data && data.error) || (typeof data === 'string' && data) || res.statusText;
      throw new APIError(res.status, `${res.status} ${msg}`.trim());
    }
    return data;
  }
}

const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
};

// ---- stats polling and charts ----

const samples = []; // {t (ms), s (stats)}
const rates = []; // {t, conns, msgIn, msgOut, bytesIn, bytesOut}
let lastStats = null;
let info = null;
let infoAt = 0; // when info was fetched (ms), to keep its uptime current
const statusPill = $('#conn-status');

const msgIn = (s) => s.messages_received;
const msgOut = (s) => s.messages_sent;

function addSample(s) {
  const t = Date.now();
  const prev = samples[samples.length - 1];
  samples.push({ t, s });
  if (samples.length > HISTORY + 1) samples.shift();
  if (!prev) return;
  const dt = (t - prev.t) / 1000;
  if (dt <= 0) return;
  // A counter that went down means a restart: no rate for that step.
  const d = (f) => {
    const a = f(prev.s), b = f(s);
    return a == null || b == null || b < a ? 0 : (b - a) / dt;
  };
  rates.push({
    t,
    conns: s.connections ?? 0,
    msgIn: d(msgIn),
    msgOut: d(msgOut),
    bytesIn: d((x) => x.bytes_received),
    bytesOut: d((x) => x.bytes_sent),
  });
  if (rates.length > HISTORY) rates.shift();
}

let pollTimer;
let pollQuiet = false;
let polling = false; // one request at a time, one timer chain

async function poll() {
  clearTimeout(pollTimer);
  if (polling) return;
  // A hidden tab asks nothing; the next rate spans the gap.
  if (document.hidden) {
    pollTimer = setTimeout(poll, POLL_MS);
    return;
  }
  polling = true;
  try {
    const s = await api('GET', '/api/v1/stats', { quiet: pollQuiet });
    lastStats = s;
    addSample(s);
    statusPill.textContent = 'live';
    statusPill.className = 'pill ok';
    if (route.name === 'overview') updateOverview();
  } catch (e) {
    // A dismissed token form is not asked again by the background poll.
    if (e.status === 401) pollQuiet = true;
    statusPill.textContent = e.status === 401 ? 'signed out' : 'offline';
    statusPill.className = 'pill bad';
  }
  polling = false;
  pollTimer = setTimeout(poll, POLL_MS);
}

const palette = { a: '#2563eb', b: '#d9480f' };

// drawChart draws series ([{values, color}]) on canvas, scaled for the
// device's pixel ratio, with a few labelled grid lines.
function drawChart(canvas, series, fmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  if (!w || !hgt) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  const css = getComputedStyle(canvas);
  const grid = css.getPropertyValue('--grid').trim() || '#ddd';
  const ink = css.getPropertyValue('--ink').trim() || '#555';
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  max = fmt === bytes ? niceBytes(max) : niceMax(max);
  ctx.font = '11px system-ui, sans-serif';
  let labelWidth = 0;
  for (let i = 0; i <= 4; i++) labelWidth = Math.max(labelWidth, ctx.measureText(fmt((max * i) / 4)).width);
  const left = Math.ceil(labelWidth) + 12, right = 8, top = 8, bottom = 18;
  const pw = w - left - right, ph = hgt - top - bottom;
  ctx.fillStyle = ink;
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y) + 0.5);
    ctx.lineTo(w - right, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(fmt((max * i) / 4), left - 6, y);
  }
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  // The window grows with the history up to HISTORY samples, so that a
  // fresh page shows lines, not dots.
  const slots = Math.min(HISTORY, Math.max(30, ...series.map((s) => s.values.length)));
  ctx.fillText(`last ${duration((slots * POLL_MS) / 1000)}`, left, hgt - 4);
  ctx.textAlign = 'right';
  ctx.fillText('now', w - right, hgt - 4);
  const step = pw / (slots - 1);
  for (const s of series) {
    const vs = s.values;
    if (!vs.length) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    vs.forEach((v, i) => {
      const x = left + pw - (vs.length - 1 - i) * step;
      const y = top + ph - (v / max) * ph;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    if (vs.length === 1) {
      ctx.fillStyle = s.color;
      ctx.fillRect(left + pw - 2, top + ph - (vs[0] / max) * ph - 2, 4, 4);
    }
  }
}

// niceBytes rounds up in binary units, so that the labels read 512 KiB
// rather than 488.3 KiB.
function niceBytes(v) {
  let unit = 1;
  while (v >= 1024 * unit && unit < 1024 ** 4) unit *= 1024;
  return niceMax(v / unit) * unit;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// ---- router ----

let route = { name: '', arg: '' };
const routes = {
  overview: renderOverview,
  clients: renderClients,
  client: renderClient,
  subscriptions: renderSubscriptions,
  retained: renderRetained,
  pubsub: renderPubSub,
};

function parseHash() {
  const m = /^#\/([a-z]+)(?:\/(.*))?$/.exec(location.hash);
  if (!m) return { name: 'overview', arg: '' };
  let [, name, arg = ''] = m;
  if (name === 'clients' && arg) {
    name = 'client';
    try {
      arg = decodeURIComponent(arg);
    } catch {
      // A hand-typed % that is no escape: the id as written.
    }
  }
  return routes[name] ? { name, arg } : { name: 'overview', arg: '' };
}

function navigate(focus) {
  route = parseHash();
  for (const a of document.querySelectorAll('nav a')) {
    const here = a.dataset.route === route.name || (route.name === 'client' && a.dataset.route === 'clients');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  routes[route.name](route.arg);
  const h1 = $('h1', main);
  document.title = `${h1 ? h1.textContent : 'Dashboard'} · Tern`;
  if (focus && h1) {
    h1.tabIndex = -1;
    h1.focus();
  }
}

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/')) navigate(true);
});
$('#skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

function failed(where, e) {
  where.replaceChildren(h('p', { class: 'error' }, e.message));
}

// pager draws "a–b of n" with previous/next buttons.
function pager(total, offset, limit, go) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return h('div', { class: 'pager' },
    h('button', { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, '‹ Previous'),
    h('span', { class: 'range', 'aria-live': 'polite' }, `${num(from)}–${num(to)} of ${num(total)}`),
    h('button', { type: 'button', disabled: to >= total, onclick: () => go(offset + limit) }, 'Next ›'));
}

function table(caption, head, rows, empty, cls) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colSpan: head.length, class: 'empty' }, empty)))));
}

const clientLink = (id) => h('a', { href: `#/clients/${encodeURIComponent(id)}` }, id === '' ? '(empty id)' : id);

// ---- overview ----

const statCards = [
  ['connections', 'Connections', (s) => num(s.connections), (s) => (s.connections_max != null ? `peak ${num(s.connections_max)}` : '')],
  ['sessions', 'Sessions', (s) => num(s.sessions)],
  ['subscriptions', 'Subscriptions', (s) => num(s.subscriptions)],
  ['retained', 'Retained', (s) => num(s.retained), (s) => (s.retained_bytes != null ? bytes(s.retained_bytes) : '')],
  ['msg-in', 'Messages in /s', () => rate(rates.at(-1)?.msgIn), (s) => `${num(msgIn(s))} total`],
  ['msg-out', 'Messages out /s', () => rate(rates.at(-1)?.msgOut), (s) => `${num(msgOut(s))} total`],
  ['bytes-in', 'Bytes in /s', () => bytes(rates.at(-1)?.bytesIn), (s) => `${bytes(s.bytes_received)} total`],
  ['bytes-out', 'Bytes out /s', () => bytes(rates.at(-1)?.bytesOut), (s) => `${bytes(s.bytes_sent)} total`],
];

const charts = [
  { id: 'chart-connections', title: 'Connections', fmt: num, series: [{ name: 'connected', color: palette.a, f: (r) => r.conns }] },
  { id: 'chart-messages', title: 'Messages per second', fmt: rate, series: [
    { name: 'in', color: palette.a, f: (r) => r.msgIn },
    { name: 'out', color: palette.b, f: (r) => r.msgOut }] },
  { id: 'chart-bytes', title: 'Bytes per second', fmt: bytes, series: [
    { name: 'in', color: palette.a, f: (r) => r.bytesIn },
    { name: 'out', color: palette.b, f: (r) => r.bytesOut }] },
];

function renderOverview() {
  main.append(
    h('h1', {}, 'Overview'),
    h('section', { class: 'cards', 'aria-label': 'Current figures' },
      statCards.map(([key, label]) => h('div', { class: 'card', dataset: { stat: key } },
        h('span', { class: 'label' }, label),
        h('span', { class: 'value' }, '–'),
        h('span', { class: 'sub' }, '')))),
    h('section', { class: 'charts', 'aria-label': 'Charts' },
      charts.map((c) => h('figure', { class: 'chart' },
        h('figcaption', {}, h('span', { class: 'title' }, c.title), ' ',
          c.series.map((s) => h('span', { class: 'legend', dataset: { series: s.name } },
            h('i', { style: `background:${s.color}` }), s.name, ' ', h('b', {}, '–')))),
        h('canvas', { id: c.id, role: 'img', 'aria-label': c.title, height: 160 })))),
    h('section', { class: 'server', 'aria-labelledby': 'server-h' },
      h('h2', { id: 'server-h' }, 'Server'),
      h('div', { id: 'server-info' }, 'Loading…')),
    h('section', { class: 'cluster', id: 'cluster', 'aria-labelledby': 'cluster-h', hidden: true },
      h('h2', { id: 'cluster-h' }, 'Cluster'),
      h('div', { id: 'cluster-info' })),
    h('details', { class: 'counters' },
      h('summary', {}, 'All counters'),
      h('div', { id: 'all-counters' })));
  loadInfo().then(showInfo, (e) => failed($('#server-info'), e));
  loadCluster();
  updateOverview();
}

// loadCluster shows the cluster this node belongs to, if any: its nodes
// and its cluster traffic. A single node (or a server without the
// endpoint) shows nothing.
async function loadCluster() {
  let c;
  try {
    c = await api('GET', '/api/v1/cluster', { quiet: true });
  } catch {
    return;
  }
  const el = $('#cluster-info');
  if (!el || !c || !c.enabled) return;
  el.closest('section').hidden = false;
  const st = c.stats || {};
  el.replaceChildren(
    h('dl', { class: 'facts' },
      h('dt', {}, 'This node'), h('dd', {}, c.node),
      h('dt', {}, 'State'), h('dd', {}, c.ready ? 'ready' : `not ready: ${c.reason || ''}`),
      h('dt', {}, 'Forwarded'), h('dd', {}, num(st.forwarded)),
      h('dt', {}, 'Received from other nodes'), h('dd', {}, num(st.received)),
      h('dt', {}, 'Client ids taken over / released'), h('dd', {}, `${num(st.takeovers)} / ${num(st.released)}`)),
    table(`Nodes (${c.nodes.length})`, ['Node', 'Last heard'], c.nodes.map((n) =>
      h('tr', {}, h('td', {}, n.self ? `${n.name} (this node)` : n.name), h('td', {}, n.self ? 'now' : when(n.last_seen)))), 'none'));
}

async function loadInfo() {
  info = await api('GET', '/api/v1/info', { quiet: pollQuiet });
  infoAt = Date.now();
  return info;
}

function showInfo(i) {
  const el = $('#server-info');
  if (!el) return;
  const rows = [
    ['Version', i.version],
    ['Started', when(i.started_at)],
    ['Uptime', uptime(i)],
  ];
  el.replaceChildren(
    h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', k === 'Uptime' ? { id: 'uptime' } : {}, v ?? '–')])),
    table('Listeners', ['Type', 'Address'], (i.listeners || []).map((l) => h('tr', {}, h('td', {}, l.type), h('td', {}, l.address))), 'none'),
    i.limits && Object.keys(i.limits).length
      ? h('details', {}, h('summary', {}, 'Limits'),
        h('dl', { class: 'facts' }, Object.entries(i.limits).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))])))
      : null);
}

function flatten(obj, prefix = '', out = []) {
  for (const [k, v] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, name, out);
    else out.push([name, v]);
  }
  return out;
}

// uptime is the server's uptime now, from what /api/v1/info said then.
function uptime(i) {
  return i.uptime_seconds != null ? duration(i.uptime_seconds + (Date.now() - infoAt) / 1000) : '–';
}

function updateOverview() {
  const up = document.getElementById('uptime');
  if (up && info) up.textContent = uptime(info);
  const s = lastStats;
  if (!s) return;
  for (const [key, , value, sub] of statCards) {
    const card = main.querySelector(`[data-stat="${key}"]`);
    if (!card) return;
    $('.value', card).textContent = value(s);
    $('.sub', card).textContent = sub ? sub(s) : '';
  }
  for (const c of charts) {
    const canvas = document.getElementById(c.id);
    if (!canvas) continue;
    const series = c.series.map((x) => ({ color: x.color, values: rates.map(x.f) }));
    drawChart(canvas, series, c.fmt);
    const last = rates.at(-1);
    const fig = canvas.closest('figure');
    const parts = [];
    for (const x of c.series) {
      const v = last ? c.fmt(x.f(last)) : '–';
      $(`[data-series="${x.name}"] b`, fig).textContent = v;
      parts.push(`${x.name} ${v}`);
    }
    canvas.setAttribute('aria-label', `${c.title}: ${parts.join(', ')}`);
    canvas.dataset.points = String(rates.length);
  }
  const all = $('#all-counters');
  if (all) {
    all.replaceChildren(h('dl', { class: 'facts' }, flatten(s).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'number' ? num(v) : String(v))])));
  }
}

window.addEventListener('resize', () => {
  if (route.name === 'overview') updateOverview();
});

// ---- clients ----

const clientsState = { search: '', offset: 0 };

async function kick(id) {
  try {
    await api('POST', `/api/v1/clients/${encodeURIComponent(id)}/disconnect`);
    say(`Disconnected ${id}.`);
    return true;
  } catch (e) {
    say(`Could not disconnect ${id}: ${e.message}`, 'error');
    return false;
  }
}

async function deleteSession(id) {
  if (!confirm(`Delete the session of ${id} and everything stored for it?`)) return false;
  try {
    await api('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`);
    say(`Deleted the session of ${id}.`);
    return true;
  } catch (e) {
    say(`Could not delete the session of ${id}: ${e.message}`, 'error');
    return false;
  }
}

// clientActions: Kick for a connected client, Delete for an offline
// session; after(deleted) runs when it worked.
function clientActions(c, after, short) {
  return c.connected
    ? h('button', { type: 'button', class: 'danger', 'aria-label': `Kick ${c.client_id}`, onclick: async () => { if (await kick(c.client_id)) after(false); } }, 'Kick')
    : h('button', { type: 'button', class: 'danger', 'aria-label': `Delete session ${c.client_id}`, onclick: async () => { if (await deleteSession(c.client_id)) after(true); } }, short ? 'Delete' : 'Delete session');
}

function searchForm(id, label, value, onsearch, extra = []) {
  let timer;
  const input = h('input', { id, type: 'search', value, autocomplete: 'off', spellcheck: false,
    oninput: () => { clearTimeout(timer); timer = setTimeout(() => onsearch(input.value), 250); } });
  return h('form', { role: 'search', class: 'search',
    onsubmit: (ev) => { ev.preventDefault(); clearTimeout(timer); onsearch(input.value); } },
  h('label', { for: id }, label), input, extra, h('button', { type: 'submit' }, 'Search'));
}

function renderClients() {
  const results = h('div', { id: 'clients-results' }, 'Loading…');
  main.append(
    h('h1', {}, 'Clients'),
    searchForm('client-search', 'Search client id, user name or address', clientsState.search, (v) => {
      clientsState.search = v;
      clientsState.offset = 0;
      load();
    }),
    results);
  async function load() {
    const { search, offset } = clientsState;
    let page;
    try {
      page = await api('GET', `/api/v1/clients${q({ search, offset, limit: PAGE })}`);
    } catch (e) {
      failed(results, e);
      return;
    }
    if (search !== clientsState.search || offset !== clientsState.offset) return; // a newer query is on its way
    const items = page.items || [];
    results.replaceChildren(
      table(`${num(page.total)} client${page.total === 1 ? '' : 's'}${search ? ` matching “${search}”` : ''}`,
        ['Client ID', 'User', 'Address', 'Status', 'MQTT', 'Subs', 'Queued', 'In flight', ''],
        items.map((c) => h('tr', {},
          h('th', { scope: 'row' }, clientLink(c.client_id)),
          h('td', {}, c.username || (c.anonymous ? '(anonymous)' : '')),
          h('td', {}, c.address || ''),
          h('td', {}, h('span', { class: `pill ${c.connected ? 'ok' : ''}` }, c.connected ? 'connected' : 'offline')),
          h('td', {}, versions[c.protocol_version] || c.protocol_version),
          h('td', { class: 'n' }, num(c.subscriptions)),
          h('td', { class: 'n' }, num(c.queued)),
          h('td', { class: 'n' }, num(c.inflight)),
          h('td', {}, clientActions(c, load, true)))),
        search ? 'No client matches.' : 'No clients.', 'clients'),
      pager(page.total, page.offset ?? offset, page.limit || PAGE, (o) => { clientsState.offset = o; load(); }));
  }
  load();
}

function renderClient(id) {
  const body = h('div', {}, 'Loading…');
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/clients' }, '‹ Clients')),
    h('h1', {}, 'Client ', h('code', {}, id)),
    body);
  async function load() {
    let r;
    try {
      r = await api('GET', `/api/v1/clients/${encodeURIComponent(id)}`);
    } catch (e) {
      failed(body, e.status === 404 ? new Error('No such client or session (it may have ended).') : e);
      return;
    }
    const c = r.client;
    const facts = [
      ['Status', c.connected ? 'connected' : 'offline'],
      ['User name', c.username || (c.anonymous ? '(anonymous)' : '–')],
      ['Address', c.address || '–'],
      ['MQTT version', versions[c.protocol_version] || c.protocol_version],
      ['Connected since', when(c.connected_since)],
      ['Keep alive', c.keep_alive ? `${c.keep_alive} s` : 'off'],
      ['Persistent session', yes(c.persistent)],
      ['Session expires', when(c.expires_at)],
      ['Subscriptions', num(c.subscriptions)],
      ['Queued', num(c.queued)],
      ['In flight', num(c.inflight)],
      ['Bytes received', bytes(c.bytes_received)],
      ['Bytes sent', bytes(c.bytes_sent)],
    ];
    body.replaceChildren(
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('p', { class: 'actions' }, clientActions(c, (deleted) => { if (deleted) location.hash = '#/clients'; else load(); })),
      subsTable(r.subscriptions || [], false));
  }
  load();
}

function subsTable(items, withClient, caption = 'Subscriptions') {
  const head = [...(withClient ? ['Client ID'] : []), 'Filter', 'QoS', 'No local', 'Retain as published', 'Retain handling', 'Subscription id'];
  return table(caption, head, items.map((s) => h('tr', {},
    withClient ? h('td', {}, clientLink(s.client_id)) : null,
    h('td', {}, h('code', {}, s.filter)),
    h('td', { class: 'n' }, s.qos),
    h('td', {}, yes(s.no_local)),
    h('td', {}, yes(s.retain_as_published)),
    h('td', { class: 'n' }, s.retain_handling ?? 0),
    h('td', { class: 'n' }, s.subscription_id || ''))), 'No subscriptions.');
}

// ---- subscriptions ----

const subsState = { search: '', client: '', offset: 0 };

function renderSubscriptions() {
  const results = h('div', {}, 'Loading…');
  const client = h('input', { id: 'subs-client', type: 'text', value: subsState.client, autocomplete: 'off', spellcheck: false });
  main.append(
    h('h1', {}, 'Subscriptions'),
    searchForm('subs-search', 'Filter contains', subsState.search, (v) => {
      subsState.search = v;
      subsState.client = client.value;
      subsState.offset = 0;
      load();
    }, [h('label', { for: 'subs-client' }, 'Client ID'), client]),
    results);
  async function load() {
    const { search, offset } = subsState;
    try {
      const page = await api('GET', `/api/v1/subscriptions${q({ client: subsState.client, search, offset, limit: PAGE })}`);
      results.replaceChildren(
        subsTable(page.items || [], true, `${num(page.total)} subscription${page.total === 1 ? '' : 's'}`),
        pager(page.total, page.offset ?? offset, page.limit || PAGE, (o) => { subsState.offset = o; load(); }));
    } catch (e) {
      failed(results, e);
    }
  }
  load();
}

// ---- retained ----

const retainedState = { filter: '#', selected: '' };
const RETAINED_CAP = 10000;

function buildTree(items) {
  const root = { name: '', children: new Map(), count: 0 };
  for (const m of items) {
    let node = root;
    node.count++;
    for (const level of m.topic.split('/')) {
      if (!node.children.has(level)) node.children.set(level, { name: level, children: new Map(), count: 0 });
      node = node.children.get(level);
      node.count++;
    }
    node.message = m;
  }
  return root;
}

function renderRetained() {
  const tree = h('div', { class: 'tree', id: 'retained-tree' }, 'Loading…');
  const view = h('section', { class: 'message', id: 'retained-view', 'aria-live': 'polite' }, h('p', { class: 'hint' }, 'Choose a topic to see its message.'));
  const filter = h('input', { id: 'retained-filter', type: 'text', value: retainedState.filter, required: true, autocomplete: 'off', spellcheck: false });
  main.append(
    h('h1', {}, 'Retained messages'),
    h('form', { class: 'search', onsubmit: (ev) => { ev.preventDefault(); retainedState.filter = filter.value; load(); } },
      h('label', { for: 'retained-filter' }, 'Topic filter'), filter, h('button', { type: 'submit' }, 'Load')),
    h('div', { class: 'split' }, h('nav', { 'aria-label': 'Retained topics' }, tree), view));

  async function load() {
    const items = [];
    let total = 0;
    try {
      do {
        const page = await api('GET', `/api/v1/retained${q({ filter: retainedState.filter, offset: items.length, limit: 1000 })}`);
        total = page.total;
        if (!page.items || !page.items.length) break;
        items.push(...page.items);
      } while (items.length < total && items.length < RETAINED_CAP);
    } catch (e) {
      failed(tree, e);
      return;
    }
    const root = buildTree(items);
    const openAll = items.length <= 200;
    tree.replaceChildren(
      h('p', { class: 'hint' }, `${num(total)} retained message${total === 1 ? '' : 's'}${items.length < total ? `, the first ${num(items.length)} shown` : ''}`),
      items.length ? h('ul', {}, [...root.children.values()].map((n) => branch(n, '', openAll))) : h('p', {}, 'None.'));
    if (retainedState.selected) show(retainedState.selected, false);
  }

  function branch(node, prefix, open) {
    const topic = prefix + node.name;
    const label = node.name === '' ? '(empty)' : node.name;
    const leafButton = node.message
      ? h('button', { type: 'button', class: 'leaf', dataset: { topic }, 'aria-label': `View ${topic}`,
        'aria-pressed': String(retainedState.selected === topic), onclick: () => show(topic, true) }, node.children.size ? `${label} (this topic)` : label)
      : null;
    if (!node.children.size) return h('li', {}, leafButton);
    return h('li', {}, h('details', { open },
      h('summary', {}, label, ' ', h('span', { class: 'count' }, `(${num(node.count)})`)),
      h('ul', {}, leafButton ? h('li', {}, leafButton) : null,
        [...node.children.values()].map((c) => branch(c, `${topic}/`, open)))));
  }

  async function show(topic, focus) {
    retainedState.selected = topic;
    for (const b of tree.querySelectorAll('button.leaf')) b.setAttribute('aria-pressed', String(b.dataset.topic === topic));
    let m;
    try {
      m = await api('GET', `/api/v1/retained/message${q({ topic })}`);
    } catch (e) {
      view.replaceChildren(h('p', { class: 'error' }, e.status === 404 ? `No retained message on ${topic} any more.` : e.message));
      return;
    }
    const raw = fromBase64(m.payload_base64);
    const isText = typeof m.payload_text === 'string';
    const heading = h('h2', { tabIndex: -1 }, h('code', {}, m.topic));
    view.replaceChildren(
      heading,
      h('dl', { class: 'facts' },
        h('dt', {}, 'QoS'), h('dd', {}, m.qos),
        h('dt', {}, 'Size'), h('dd', {}, bytes(m.size ?? raw.length)),
        h('dt', {}, 'Content type'), h('dd', {}, m.content_type || '–'),
        h('dt', {}, 'Expires'), h('dd', {}, when(m.expires_at))),
      h('h3', {}, isText ? 'Payload' : 'Payload (binary, hex)'),
      h('pre', { class: 'payload', tabIndex: 0 }, isText ? m.payload_text : hex(raw, 4096)),
      h('p', { class: 'actions' }, h('button', { type: 'button', class: 'danger', onclick: () => remove(topic) }, 'Delete retained message')));
    if (focus) heading.focus();
  }

  async function remove(topic) {
    if (!confirm(`Delete the retained message on ${topic}?`)) return;
    try {
      await api('DELETE', `/api/v1/retained/message${q({ topic })}`);
    } catch (e) {
      say(`Could not delete ${topic}: ${e.message}`, 'error');
      return;
    }
    say(`Deleted the retained message on ${topic}.`);
    retainedState.selected = '';
    view.replaceChildren(h('p', { class: 'hint' }, 'Choose a topic to see its message.'));
    load();
  }

  load();
}

// ---- publish and subscribe ----

const mq = { client: null, subs: [], log: [], url: '', state: 'disconnected' };
const LOG_MAX = 200;

// defaultWSURL picks the first ws/wss listener the server reports, with
// this page's host where the listener binds every address.
function defaultWSURL() {
  const l = (info && info.listeners || []).find((x) => x.type === 'ws' || x.type === 'wss');
  const scheme = l ? l.type : location.protocol === 'https:' ? 'wss' : 'ws';
  if (!l) return `${scheme}://${location.hostname}:8080/mqtt`;
  const m = /^(.*):(\d+)$/.exec(l.address);
  let host = m ? m[1] : l.address;
  const port = m ? m[2] : '';
  if (['', '0.0.0.0', '::', '[::]'].includes(host)) host = location.hostname;
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `${scheme}://${host}${port ? `:${port}` : ''}${l.path || '/mqtt'}`;
}

function renderPubSub() {
  const pubTopic = h('input', { id: 'pub-topic', type: 'text', required: true, autocomplete: 'off', spellcheck: false });
  const pubPayload = h('textarea', { id: 'pub-payload', rows: 3 });
  const pubQoS = h('select', { id: 'pub-qos' }, [0, 1, 2].map((n) => h('option', { value: String(n) }, String(n))));
  const pubRetain = h('input', { id: 'pub-retain', type: 'checkbox' });
  const pubCT = h('input', { id: 'pub-content-type', type: 'text', autocomplete: 'off', placeholder: 'text/plain' });
  const wsPublish = h('button', { type: 'button', id: 'pub-ws', disabled: mq.state !== 'connected', onclick: publishWS }, 'Publish over WebSocket (QoS 0)');

  const url = h('input', { id: 'ws-url', type: 'url', required: true, value: mq.url || defaultWSURL(), spellcheck: false });
  const cid = h('input', { id: 'ws-client-id', type: 'text', autocomplete: 'off', spellcheck: false, placeholder: 'generated' });
  const user = h('input', { id: 'ws-user', type: 'text', autocomplete: 'username' });
  const pass = h('input', { id: 'ws-pass', type: 'password', autocomplete: 'current-password' });
  const ka = h('input', { id: 'ws-keepalive', type: 'number', min: 0, max: 65535, value: '30', inputMode: 'numeric' });
  const connectBtn = h('button', { type: 'submit', id: 'ws-connect', class: 'primary' });
  const state = h('span', { id: 'ws-state', role: 'status' });
  const subFilter = h('input', { id: 'sub-filter', type: 'text', required: true, value: '#', autocomplete: 'off', spellcheck: false });
  const subQoS = h('select', { id: 'sub-qos' }, [0, 1, 2].map((n) => h('option', { value: String(n) }, String(n))));
  const subButton = h('button', { type: 'submit', id: 'sub-button' }, 'Subscribe');
  const subList = h('ul', { id: 'sub-list', class: 'chips' });
  const log = h('ol', { id: 'ws-log', class: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions' });

  main.append(
    h('h1', {}, 'Publish & subscribe'),
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'pub-h', class: 'panel' },
        h('h2', { id: 'pub-h' }, 'Publish'),
        h('form', { id: 'pub-form', class: 'stack', onsubmit: publishAPI },
          h('label', { for: 'pub-topic' }, 'Topic'), pubTopic,
          h('label', { for: 'pub-payload' }, 'Payload (text)'), pubPayload,
          h('div', { class: 'row' },
            h('span', {}, h('label', { for: 'pub-qos' }, 'QoS'), pubQoS),
            h('span', { class: 'check' }, pubRetain, h('label', { for: 'pub-retain' }, 'Retain'))),
          h('label', { for: 'pub-content-type' }, 'Content type (MQTT 5 receivers)'), pubCT,
          h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'pub-api' }, 'Publish'), wsPublish),
          h('p', { class: 'hint' }, '“Publish” goes through the admin API as the server; the WebSocket button sends from this page’s MQTT connection.'))),
      h('section', { 'aria-labelledby': 'sub-h', class: 'panel' },
        h('h2', { id: 'sub-h' }, 'Subscribe over WebSocket'),
        h('form', { id: 'ws-form', class: 'stack', onsubmit: toggleConnect },
          h('label', { for: 'ws-url' }, 'WebSocket URL'), url,
          h('details', {}, h('summary', {}, 'Connection options'),
            h('div', { class: 'stack' },
              h('label', { for: 'ws-client-id' }, 'Client ID'), cid,
              h('label', { for: 'ws-user' }, 'User name'), user,
              h('label', { for: 'ws-pass' }, 'Password'), pass,
              h('label', { for: 'ws-keepalive' }, 'Keep alive (seconds)'), ka)),
          h('div', { class: 'actions' }, connectBtn, state)),
        h('form', { id: 'sub-form', class: 'row', onsubmit: subscribe },
          h('span', { class: 'grow' }, h('label', { for: 'sub-filter' }, 'Topic filter'), subFilter),
          h('span', {}, h('label', { for: 'sub-qos' }, 'QoS'), subQoS),
          subButton),
        subList)),
    h('section', { 'aria-labelledby': 'log-h' },
      h('div', { class: 'row' }, h('h2', { id: 'log-h', class: 'grow' }, 'Messages'),
        h('button', { type: 'button', onclick: () => { mq.log = []; showLog(); } }, 'Clear')),
      log));

  function showState() {
    const s = mq.state;
    connectBtn.textContent = s === 'connected' ? 'Disconnect' : s === 'connecting' ? 'Connecting…' : 'Connect';
    connectBtn.disabled = s === 'connecting';
    subButton.disabled = s !== 'connected';
    wsPublish.disabled = s !== 'connected';
    state.textContent = s === 'connected' ? `connected as ${mq.client.clientId}` : mq.reason ? `${s}: ${mq.reason}` : s;
    state.className = `pill ${s === 'connected' ? 'ok' : mq.reason && s !== 'connecting' ? 'bad' : ''}`;
    subList.replaceChildren(...mq.subs.map((s2) => h('li', {},
      h('code', {}, s2.filter), ` QoS ${s2.granted} `,
      h('button', { type: 'button', class: 'link', 'aria-label': `Unsubscribe ${s2.filter}`, onclick: () => unsubscribe(s2.filter) }, 'Unsubscribe'))));
  }
  mq.render = () => { if (main.contains(state)) showState(); };

  function showLog() {
    log.replaceChildren(...mq.log.map(logItem));
  }
  mq.renderLog = (m) => {
    if (!main.contains(log)) return;
    log.prepend(logItem(m));
    while (log.children.length > LOG_MAX) log.lastChild.remove();
  };

  async function toggleConnect(ev) {
    ev.preventDefault();
    if (mq.client && mq.state === 'connected') {
      mq.client.close();
      return;
    }
    const keepAlive = Number(ka.value);
    if (!Number.isInteger(keepAlive) || keepAlive < 0 || keepAlive > 65535) {
      say('Keep alive must be a whole number of seconds, 0 to 65535.', 'error');
      return;
    }
    mq.url = url.value;
    mq.subs = [];
    mq.reason = '';
    mq.state = 'connecting';
    showState();
    const c = new Client(url.value, { clientId: cid.value.trim(), keepAlive, username: user.value, password: pass.value }, {
      onMessage: (m) => {
        const entry = { at: new Date(), ...m };
        mq.log.unshift(entry);
        if (mq.log.length > LOG_MAX) mq.log.pop();
        mq.renderLog(entry);
      },
      onClose: (reason) => {
        if (mq.client !== c) return;
        mq.state = 'disconnected';
        mq.reason = reason === 'disconnected' ? '' : reason;
        mq.subs = [];
        mq.render();
      },
    });
    mq.client = c;
    try {
      await c.connect();
      mq.state = 'connected';
    } catch (e) {
      mq.state = 'disconnected';
      mq.reason = e.message;
    }
    mq.render();
  }

  async function subscribe(ev) {
    ev.preventDefault();
    const filter = subFilter.value;
    try {
      const granted = await mq.client.subscribe(filter, Number(subQoS.value));
      mq.subs = mq.subs.filter((s) => s.filter !== filter).concat({ filter, granted });
      mq.render();
    } catch (e) {
      say(e.message, 'error');
    }
  }

  async function unsubscribe(filter) {
    try {
      await mq.client.unsubscribe(filter);
      mq.subs = mq.subs.filter((s) => s.filter !== filter);
      mq.render();
    } catch (e) {
      say(e.message, 'error');
    }
  }

  function publishWS() {
    if (!pubTopic.reportValidity()) return;
    try {
      mq.client.publish(pubTopic.value, pubPayload.value, { retain: pubRetain.checked });
      say(`Sent to ${pubTopic.value} over WebSocket.`);
    } catch (e) {
      say(e.message, 'error');
    }
  }

  async function publishAPI(ev) {
    ev.preventDefault();
    const body = { topic: pubTopic.value, payload: pubPayload.value, qos: Number(pubQoS.value), retain: pubRetain.checked };
    if (pubCT.value.trim()) body.content_type = pubCT.value.trim();
    try {
      await api('POST', '/api/v1/publish', { body });
      say(`Published to ${body.topic}.`);
    } catch (e) {
      say(`Could not publish: ${e.message}`, 'error');
    }
  }

  showState();
  showLog();
  if (!mq.url && !info) {
    loadInfo().then(() => { if (!mq.url && url.value !== defaultWSURL() && !url.matches(':focus')) url.value = defaultWSURL(); }, () => {});
  }
}

const text = new TextDecoder('utf-8', { fatal: true });

function logItem(m) {
  let payload;
  try {
    payload = text.decode(m.payload);
  } catch {
    payload = null;
  }
  return h('li', {},
    h('div', { class: 'meta' },
      h('time', { datetime: m.at.toISOString() }, m.at.toLocaleTimeString()), ' ',
      h('code', { class: 'topic' }, m.topic), ' ',
      h('span', { class: 'tag' }, `QoS ${m.qos}`), m.retain ? h('span', { class: 'tag' }, 'retained') : null),
    h('pre', { class: 'payload' }, payload ?? `${m.payload.length} bytes: ${hex(m.payload)}`));
}

// ---- start ----

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) poll();
});

showTokenState();
navigate(false);
poll();
