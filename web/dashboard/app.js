// Sextant dashboard: a small single-page app over Sextant's public APIs
// (runReport, runRealtimeReport, projections, and the AdminService for the
// settings). Plain ES2020, no framework.
// Keys live in sessionStorage only: they are gone when the tab closes. The
// secrets of new keys are shown once in the page and stored nowhere.
'use strict';

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const SVGNS = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'g', 'path', 'line', 'rect', 'circle', 'text', 'title']);

// h builds an element. Attributes: on* add listeners, text sets the text,
// vars sets CSS custom properties; children are nodes or text (never HTML).
function h(tag, attrs, ...kids) {
  const el = SVG_TAGS.has(tag) ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'vars') for (const [n, x] of Object.entries(v)) el.style.setProperty(n, x);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

// put replaces el's children, skipping empty ones (false, null).
const put = (el, ...kids) => el.replaceChildren(...kids.flat(Infinity).filter((k) => k != null && k !== false));

const load = (k, def) => {
  try { return JSON.parse(sessionStorage.getItem('sextant.' + k)) ?? def; } catch { return def; }
};
const save = (k, v) => {
  if (v == null) sessionStorage.removeItem('sextant.' + k);
  else sessionStorage.setItem('sextant.' + k, JSON.stringify(v));
};

const nf = new Intl.NumberFormat();
const pf = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const mf = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fmt = (v, kind) => (kind === 'pct' ? pf.format(v) : kind === 'money' ? mf.format(v) : kind === 'sec' ? duration(v)
  : nf.format(Math.round(v * 100) / 100));

// duration formats seconds as GA4 does: 45s, 3m 05s, 2h 10m.
function duration(s) {
  s = Math.round(s);
  const pad = (n) => String(n).padStart(2, '0');
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${pad(s % 60)}s` : `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
}

// change is the relative change from prev to cur: its text (▲ 50%, ▼ 20%,
// ▲ new, —) and class (up, down, muted).
function change(cur, prev) {
  if (!prev) return cur ? { text: '▲ new', cls: 'up' } : { text: '—', cls: 'muted' };
  const ch = (cur - prev) / prev;
  return { text: (ch > 0 ? '▲ ' : ch < 0 ? '▼ ' : '') + pf.format(Math.abs(ch)), cls: ch > 0 ? 'up' : ch < 0 ? 'down' : 'muted' };
}

// ------------------------------------------------------------------ dates

const DAY = 864e5;
const addDays = (d, n) => new Date(Date.parse(d + 'T00:00:00Z') + n * DAY).toISOString().slice(0, 10);
const daysBetween = (a, b) => Math.round((Date.parse(b) - Date.parse(a)) / DAY);

// nowIn returns today's date (YYYY-MM-DD) and the hour in time zone tz.
function nowIn(tz) {
  const parts = {};
  try {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
    for (const p of f.formatToParts(new Date())) parts[p.type] = p.value;
    return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) };
  } catch {
    const d = new Date();
    return { date: d.toISOString().slice(0, 10), hour: d.getUTCHours() };
  }
}

const dayLabel = (d, year) => new Date(d + 'T00:00:00Z').toLocaleDateString(undefined,
  { timeZone: 'UTC', month: 'short', day: 'numeric', year: year ? 'numeric' : undefined });
const keyDate = (k) => `${k.slice(0, 4)}-${k.slice(4, 6)}-${k.slice(6, 8)}`;

// --------------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// call sends one request to the server this dashboard is served from.
async function call(path, { key, body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: 'Bearer ' + key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'server unreachable');
  }
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, data.message || `HTTP ${res.status}`);
  return data;
}

// unreachable: no answer, or a proxy in front of the server got none.
const unreachable = (e) => e.status === 0 || (e.status >= 502 && e.status <= 504);

const prop = () => load('props', []).find((p) => p.id === load('current')) || null;

function report(body, realtime) {
  const p = prop();
  const fs = filters();
  if (!realtime && fs.length) body = { ...body, dimensionFilter: dimensionFilter(fs) };
  const path = `/v1/properties/${encodeURIComponent(p.id)}:${realtime ? 'runRealtimeReport' : 'runReport'}`;
  return call(path, { key: p.key, body, signal: view.signal });
}

// rowsOf turns a report into [{dims: [string], mets: [number]}].
const rowsOf = (r) => (r.rows || []).map((row) => ({
  dims: (row.dimensionValues || []).map((d) => d.value ?? ''),
  mets: (row.metricValues || []).map((m) => Number(m.value) || 0),
}));

// ------------------------------------------------------------ view control

// view is the current screen: its requests are aborted and its timers
// cleared when another one replaces it.
let view = { signal: new AbortController().signal, timers: [] };

function startView(name) {
  view.ctrl?.abort();
  view.timers.forEach(clearTimeout);
  const ctrl = new AbortController();
  view = { name, ctrl, signal: ctrl.signal, timers: [] };
  return view;
}

function later(v, fn, ms) {
  if (!v.signal.aborted) v.timers.push(setTimeout(fn, ms));
}

function banner(message, kind, action) {
  const b = $('#banner');
  if (!message) {
    b.hidden = true;
    b.replaceChildren();
    return;
  }
  b.className = 'banner' + (kind ? ' ' + kind : '');
  put(b, h('span', { text: message }), action && h('button', { type: 'button', class: 'ghost', onclick: action[1], text: action[0] }));
  b.hidden = false;
}

// failed reports a failed load; network errors retry it after 5 s.
function failed(v, err, retry) {
  if (err.name === 'AbortError' || v.signal.aborted) return;
  if (err.status === 401 || err.status === 403) {
    banner('Key expired or wrong, sign in again.', 'bad', ['Sign in again', () => signIn({ id: prop()?.id })]);
  } else if (unreachable(err)) {
    banner('Server unreachable, retrying…');
    later(v, retry, 5000);
  } else {
    banner('The server answered: ' + err.message, 'bad', ['Retry', () => { banner(); retry(); }]);
  }
}

// ------------------------------------------------------------------ shell

function shell(signedIn) {
  $('#nav').hidden = !signedIn;
  $('#account').hidden = !signedIn;
  if (!signedIn) return;
  const sel = $('#property');
  const cur = load('current');
  const props = load('props', []);
  put(sel, props.map((p) => h('option', { value: p.id, selected: p.id === cur, text: 'Property ' + p.id })));
  sel.hidden = !props.length; // an admin may have signed in with the admin key only
  for (const a of document.querySelectorAll('#nav a')) {
    a.href = hashOf(a.dataset.view, filters());
    if (a.dataset.view === view.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route(focus) {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const views = { overview, realtime, projections, settings, ...Object.fromEntries(Object.keys(GROUPS).map((g) => [g, reportPage])) };
  // Settings need the admin key only (it is asked for there), not a read key.
  if (!prop() && name !== 'settings') return signIn({});
  banner();
  const v = startView(views[name] ? name : 'overview');
  shell(true);
  (views[name] || overview)(v);
  if (focus) $('#main').focus();
}

$('#property').addEventListener('change', (e) => {
  save('current', e.target.value);
  route();
});
$('#add-property').addEventListener('click', () => signIn({}, true));
$('#sign-out').addEventListener('click', () => {
  for (const k of ['props', 'current', 'admin']) save(k, null);
  signIn({});
});
addEventListener('hashchange', () => route(true));

// go shows the view of hash, also when it is the current one.
function go(hash) {
  if (location.hash === hash) route(true);
  else location.hash = hash;
}

// ----------------------------------------------------------------- sign in

function signIn(prefill, cancellable) {
  startView('signin');
  banner();
  shell(!!(cancellable || prefill.id) && !!(prop() || load('admin')));
  const err = h('p', { class: 'error', role: 'alert' });
  const id = h('input', { id: 'signin-id', name: 'property', required: true, inputmode: 'numeric', autocomplete: 'off', value: prefill.id || '' });
  const key = h('input', { id: 'signin-key', name: 'key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'sxr_…' });
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form', { id: 'signin', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'signin-id', text: 'Property ID' }), id),
    h('div', { class: 'field' }, h('label', { for: 'signin-key', text: 'Read key' }), key),
    err,
    h('div', { class: 'actions' },
      cancellable && (prop() || load('admin')) && h('button', {
        type: 'button', class: 'ghost', text: 'Cancel', onclick: () => (prop() ? route() : go('#/settings')),
      }),
      submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const p = { id: id.value.trim(), key: key.value.trim() };
    if (!p.id || !p.key) {
      err.textContent = 'Enter the property ID and its read key.';
      (p.id ? key : id).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    err.textContent = '';
    try {
      const r = await call(`/v1/properties/${encodeURIComponent(p.id)}:runReport`, {
        key: p.key, body: { metrics: [{ name: 'eventCount' }], dateRanges: [{ startDate: 'today', endDate: 'today' }] },
      });
      p.tz = r.metadata?.timeZone || 'UTC';
      save('props', [...load('props', []).filter((x) => x.id !== p.id), p]);
      save('current', p.id);
      if (!location.hash || location.hash === '#') location.hash = '#/overview';
      route(true);
    } catch (e2) {
      err.textContent = e2.status === 401 || e2.status === 403 ? 'Key expired or wrong: check the property ID and the read key.'
        : unreachable(e2) ? 'Server unreachable: is Sextant running?' : e2.message;
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  put($('#main'), h('section', { class: 'panel signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', text: 'Sign in to Sextant' }),
    h('p', { class: 'muted', text: 'Use a property ID and its read key. Keys stay in this browser tab only.' }),
    form,
    h('p', { class: 'muted alt' }, 'Administrator? ', h('a', {
      id: 'signin-admin', href: '#/settings', text: 'Manage properties and keys with the admin key',
      onclick: (e) => { e.preventDefault(); go('#/settings'); },
    }))));
  (prefill.id ? key : id).focus();
}

// ---------------------------------------------------------------- overview

const CARDS = [
  ['totalUsers', 'Users'],
  ['sessions', 'Sessions'],
  ['screenPageViews', 'Page views'],
  ['eventCount', 'Events'],
  ['engagementRate', 'Engagement rate', 'pct'],
];

const TABLES = [
  { id: 'pages', title: 'Top pages', dims: ['pagePath', 'Page'], mets: [['screenPageViews', 'Views'], ['totalUsers', 'Users'], ['eventCount', 'Events']] },
  { id: 'sources', title: 'Traffic sources', dims: ['sessionSource', 'Source', 'sessionMedium', 'Medium'], mets: [['sessions', 'Sessions'], ['totalUsers', 'Users'], ['engagementRate', 'Engaged', 'pct']] },
  { id: 'countries', title: 'Countries', dims: ['country', 'Country'], mets: [['totalUsers', 'Users'], ['sessions', 'Sessions']] },
  { id: 'devices', title: 'Devices', dims: ['deviceCategory', 'Device'], mets: [['totalUsers', 'Users'], ['sessions', 'Sessions']] },
  { id: 'browsers', title: 'Browsers', dims: ['browser', 'Browser'], mets: [['totalUsers', 'Users'], ['sessions', 'Sessions']] },
];

const ui = Object.assign({ preset: '7', start: '', end: '', compare: true, metric: 'totalUsers', grain: 'auto' }, load('ui', {}));
const tableState = {}; // id -> {col, desc, all}

// period returns the selected date range, the previous period of the same
// length, and today in the property's time zone.
function period() {
  const now = nowIn(prop().tz || 'UTC');
  let start, end;
  if (ui.preset === 'custom') {
    start = ui.start || now.date;
    end = ui.end || now.date;
    if (start > end) [start, end] = [end, start];
  } else {
    end = now.date;
    start = addDays(end, 1 - Number(ui.preset));
  }
  const days = daysBetween(start, end) + 1;
  return {
    now, days,
    cur: { startDate: start, endDate: end, name: 'current' },
    prev: { startDate: addDays(start, -days), endDate: addDays(start, -1), name: 'previous' },
  };
}

const ranges = (p) => (ui.compare ? [p.cur, p.prev] : [p.cur]);
const rangeText = (r) => (r.startDate === r.endDate ? dayLabel(r.startDate, true)
  : `${dayLabel(r.startDate)} – ${dayLabel(r.endDate, true)}`);

// toolbar is a report page's heading with its period: the date range
// and the comparison with the previous period, which re-render the page.
function toolbar(title, p) {
  const preset = h('select', { id: 'range', onchange: setUI('preset') },
    opt('1', 'Today', ui.preset), opt('7', 'Last 7 days', ui.preset), opt('28', 'Last 28 days', ui.preset),
    opt('90', 'Last 90 days', ui.preset), opt('custom', 'Custom…', ui.preset));
  const custom = ui.preset === 'custom' && [
    field('From', 'from', h('input', { id: 'from', type: 'date', value: p.cur.startDate, max: p.now.date, onchange: setUI('start') })),
    field('To', 'to', h('input', { id: 'to', type: 'date', value: p.cur.endDate, max: p.now.date, onchange: setUI('end') })),
  ];
  return h('section', { class: 'toolbar', 'aria-label': 'Report period' },
    h('div', {},
      h('h1', { text: title }),
      h('p', { class: 'period', id: 'period', text: rangeText(p.cur) + (ui.compare ? ' compared with ' + rangeText(p.prev) : '') })),
    h('div', { class: 'fields' },
      field('Date range', 'range', preset), custom,
      h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'compare', checked: ui.compare, onchange: setUI('compare') }), 'Compare to previous period')));
}

const field = (label, id, input) => h('div', { class: 'field' }, h('label', { for: id, text: label }), input);
const opt = (value, text, cur) => h('option', { value, text, selected: value === cur });
const setUI = (k) => (e) => {
  ui[k] = e.target.type === 'checkbox' ? e.target.checked : e.target.value;
  save('ui', ui);
  route();
};

function overview(v) {
  const p = period();
  const metric = h('select', { id: 'metric', onchange: setUI('metric') }, CARDS.map(([m, label]) => opt(m, label, ui.metric)));
  const grain = h('select', { id: 'grain', onchange: setUI('grain') },
    opt('auto', 'Auto', ui.grain), opt('date', 'By day', ui.grain), opt('dateHour', 'By hour', ui.grain));

  put($('#main'),
    toolbar('Overview', p),
    chips(),
    h('section', { class: 'cards loading', id: 'cards', 'aria-label': 'Key metrics', 'aria-busy': 'true' },
      CARDS.map(([m, label]) => h('div', { class: 'card', 'data-metric': m },
        h('div', { class: 'label', text: label }), h('div', { class: 'value', text: '…' }), h('div', { class: 'delta muted', text: '\u00a0' })))),
    h('div', { id: 'install' }),
    h('section', { class: 'panel', 'aria-labelledby': 'chart-title' },
      h('header', {},
        h('h2', { id: 'chart-title', text: 'Over time' }),
        h('div', { class: 'fields toolbar' }, field('Metric', 'metric', metric), field('Granularity', 'grain', grain))),
      h('div', { class: 'chart loading', id: 'chart' }),
      h('div', { class: 'legend', 'aria-hidden': 'true' }, h('span', { text: 'This period' }), ui.compare && h('span', { class: 'prev', text: 'Previous period' }))),
    h('div', { class: 'tables' }, TABLES.map((t) => h('section', { class: 'panel', 'aria-labelledby': t.id + '-title' },
      h('header', {}, h('h2', { id: t.id + '-title', text: t.title })),
      h('div', { class: 'scroll loading', id: 'table-' + t.id }, h('p', { class: 'empty', text: 'Loading…' }))))));

  if (filters().length) metadata(v).then((md) => put($('#filters'), chipsOf(md)), () => {});
  loadOverview(v, p);
}

async function loadOverview(v, p) {
  const retry = () => loadOverview(v, period());
  const jobs = [loadCards(v, p), loadChart(v, p), ...TABLES.map((t) => loadTable(v, p, t))];
  const errs = (await Promise.allSettled(jobs)).filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (errs.length) return failed(v, errs.find((e) => e.status === 401 || e.status === 403) || errs[0], retry);
  if (!v.signal.aborted) banner();
  // Reports of a period that includes today change every second: refresh.
  if (p.cur.endDate === p.now.date) later(v, retry, 60e3);
}

async function loadCards(v, p) {
  const r = await report({ metrics: CARDS.map(([m]) => ({ name: m })), dateRanges: ranges(p) });
  const vals = { current: CARDS.map(() => 0), previous: CARDS.map(() => 0) };
  for (const row of rowsOf(r)) vals[ui.compare ? row.dims[row.dims.length - 1] : 'current'] = row.mets;
  const box = $('#cards');
  box.classList.remove('loading');
  box.removeAttribute('aria-busy');
  CARDS.forEach(([m, , kind], i) => {
    const card = box.querySelector(`[data-metric="${m}"]`);
    const cur = vals.current[i], prev = vals.previous[i];
    card.querySelector('.value').textContent = fmt(cur, kind);
    const d = card.querySelector('.delta');
    if (!ui.compare) {
      d.textContent = '\u00a0';
      return;
    }
    const ch = change(cur, prev);
    d.className = 'delta ' + ch.cls;
    put(d, ch.text, h('span', { class: 'sr', text: ' compared with the previous period' }));
    d.title = `Previous period: ${fmt(prev, kind)}`;
  });
  const events = CARDS.findIndex(([m]) => m === 'eventCount');
  const install = $('#install');
  install.replaceChildren();
  if (!vals.current[events] && !vals.previous[events]) {
    const origin = location.origin;
    install.append(h('section', { class: 'panel', 'aria-labelledby': 'install-title' },
      h('h2', { id: 'install-title', text: 'No data in this period yet' }),
      h('p', { class: 'muted', text: 'Add these two lines to your pages (with the property\'s write key) and visits show up here within seconds:' }),
      h('pre', { class: 'snippet', tabindex: '0' },
        `<script>window.sextant=window.sextant||function(){(sextant.q=sextant.q||[]).push(arguments)};sextant('config','WRITE_KEY',{server:'${origin}'})</script>\n<script async src="${origin}/sextant.js"></script>`)));
  }
}

// --------------------------------------------------------------- the chart

let chartData = null;

async function loadChart(v, p) {
  const grain = ui.grain !== 'auto' ? ui.grain : p.days <= 2 ? 'dateHour' : 'date';
  const r = await report({ dimensions: [{ name: grain }], metrics: [{ name: ui.metric }], dateRanges: ranges(p), limit: 100000 });
  const keys = (range) => {
    const out = [];
    for (let d = range.startDate; d <= range.endDate; d = addDays(d, 1)) {
      const day = d.replaceAll('-', '');
      if (grain === 'date') out.push(day);
      else for (let hr = 0; hr < 24; hr++) out.push(day + String(hr).padStart(2, '0'));
    }
    return out;
  };
  const got = { current: new Map(), previous: new Map() };
  for (const row of rowsOf(r)) got[ui.compare ? row.dims[1] : 'current']?.set(row.dims[0], row.mets[0]);
  const curKeys = keys(p.cur), prevKeys = keys(p.prev);
  const nowKey = p.now.date.replaceAll('-', '') + (grain === 'date' ? '' : String(p.now.hour).padStart(2, '0'));
  const kind = CARDS.find(([m]) => m === ui.metric)[2];
  chartData = {
    name: CARDS.find(([m]) => m === ui.metric)[1],
    kind,
    labels: curKeys.map((k) => {
      const d = dayLabel(keyDate(k));
      return grain === 'date' ? d : (p.days > 1 ? d + ' ' : '') + k.slice(8, 10) + ':00';
    }),
    cur: curKeys.map((k) => (k > nowKey ? null : got.current.get(k) || 0)),
    prev: ui.compare ? prevKeys.map((k) => got.previous.get(k) || 0) : null,
  };
  drawChart();
}

function niceMax(v, integer) {
  if (v <= 0) return integer ? 4 : 1;
  const p = 10 ** Math.floor(Math.log10(v));
  let m = [1, 2, 2.5, 5, 10].map((x) => x * p).find((x) => x >= v);
  if (integer) m = Math.max(4, Math.ceil(m / 4) * 4);
  return m;
}

function drawChart() {
  const el = $('#chart');
  if (!el || !chartData) return;
  el.classList.remove('loading');
  const { labels, cur, prev, kind, name } = chartData;
  const all = [...cur, ...(prev || [])].filter((x) => x != null);
  if (!all.some((x) => x > 0)) {
    el.replaceChildren(h('p', { class: 'empty', text: 'No data for this period.' }));
    return;
  }
  const W = Math.max(280, el.clientWidth || 600), H = 220, L = 44, R = 12, T = 10, B = 26;
  const n = labels.length, max = niceMax(Math.max(...all), kind !== 'pct');
  const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const y = (val) => T + (H - T - B) * (1 - val / max);
  const path = (arr) => arr.reduce((d, val, i) => (val == null ? d : d + (d ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(val).toFixed(1)), '');
  const last = cur.reduce((k, val, i) => (val == null ? k : i), 0);
  const total = cur.reduce((s, val) => s + (val || 0), 0);
  const svg = h('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', tabindex: '0',
    'aria-label': `${name} over time, ${labels[0]} to ${labels[n - 1]}` + (kind === 'pct' ? '' : `, ${fmt(total)} in all`) + '. Use the arrow keys to read the values.',
  });
  for (let i = 0; i <= 4; i++) {
    const val = (max * i) / 4;
    svg.append(h('line', { class: 'grid', x1: L, x2: W - R, y1: y(val), y2: y(val) }),
      h('text', { class: 'axis', x: L - 6, y: y(val) + 4, 'text-anchor': 'end' }, fmt(val, kind)));
  }
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor((W - L - R) / 90))));
  for (let i = 0; i < n; i += every) {
    svg.append(h('text', { class: 'axis', x: x(i), y: H - 8, 'text-anchor': n === 1 ? 'middle' : i === 0 ? 'start' : i + every >= n && x(i) > W - R - 30 ? 'end' : 'middle' }, labels[i]));
  }
  if (prev) svg.append(h('path', { class: 'line-prev', d: path(prev) }));
  svg.append(h('path', { class: 'area-cur', d: `${path(cur)}L${x(last)} ${y(0)}L${x(0)} ${y(0)}Z` }),
    h('path', { class: 'line-cur', d: path(cur) }));
  if (n === 1) svg.append(h('circle', { class: 'dot-cur', cx: x(0), cy: y(cur[0] || 0), r: 4 }));
  const cursor = h('line', { class: 'cursor', y1: T, y2: H - B, visibility: 'hidden' });
  const dot = h('circle', { class: 'dot-cur', r: 4, visibility: 'hidden' });
  svg.append(cursor, dot);
  const tip = h('div', { class: 'tip', hidden: true });
  let at = -1;
  const show = (i) => {
    at = Math.max(0, Math.min(n - 1, i));
    cursor.setAttribute('x1', x(at));
    cursor.setAttribute('x2', x(at));
    cursor.setAttribute('visibility', 'visible');
    if (cur[at] != null) {
      dot.setAttribute('cx', x(at));
      dot.setAttribute('cy', y(cur[at]));
    }
    dot.setAttribute('visibility', cur[at] != null ? 'visible' : 'hidden');
    tip.textContent = `${labels[at]}: ${cur[at] == null ? '—' : fmt(cur[at], kind)}` + (prev ? ` (previous: ${fmt(prev[at], kind)})` : '');
    tip.style.left = (x(at) / W) * 100 + '%';
    tip.style.top = (y(cur[at] ?? prev?.[at] ?? 0) / H) * 100 + '%';
    tip.hidden = false;
  };
  const hide = () => {
    cursor.setAttribute('visibility', 'hidden');
    dot.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  };
  svg.addEventListener('pointermove', (e) => {
    const r = svg.getBoundingClientRect();
    const px = ((e.clientX - r.left) * W) / r.width;
    show(n <= 1 ? 0 : Math.round(((px - L) * (n - 1)) / (W - L - R)));
  });
  svg.addEventListener('pointerleave', hide);
  svg.addEventListener('blur', hide);
  svg.addEventListener('focus', () => show(last));
  svg.addEventListener('keydown', (e) => {
    const step = { ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n }[e.key];
    if (step) {
      e.preventDefault();
      show((at < 0 ? last : at) + step);
    }
  });
  el.replaceChildren(svg, tip);
}

let resizeTimer = 0;
addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => view.name === 'overview' && drawChart(), 150);
});

// ------------------------------------------------------------------ tables

async function loadTable(v, p, t) {
  const dims = [];
  for (let i = 0; i < t.dims.length; i += 2) dims.push({ name: t.dims[i] });
  const box = $('#table-' + t.id);
  let r;
  try {
    r = await report({
      dimensions: dims, metrics: t.mets.map(([m]) => ({ name: m })), dateRanges: ranges(p),
      orderBys: [{ metric: { metricName: t.mets[0][0] }, desc: true }], limit: 500,
    });
  } catch (e) {
    if (e.status !== 400 || !filters().length) throw e;
    return note(box, CANNOT_FILTER, e.message);
  }
  const none = t.mets.map(() => 0);
  const rows = byRange(r, dims.length).filter((x) => x.current)
    .map((x) => ({ dims: x.dims, mets: x.current, prev: ui.compare ? x.previous || none : null }));
  renderTable(box, t, rows, (val) => filterBy(t.dims[0], val));
}

const CANNOT_FILTER = 'The active projection version cannot combine this table with the filters.';

// renderTable draws a sortable table: dimension columns, then metrics,
// with the change from the previous period where rows have prev. With
// pick, the first column's values are buttons that call it.
function renderTable(box, t, rows, pick) {
  if (!box) return;
  box.classList.remove('loading');
  if (!rows.length) {
    box.replaceChildren(h('p', { class: 'empty', text: 'No data for this period.' }));
    return;
  }
  const st = (tableState[t.id] ||= { col: t.dims.length / 2, desc: true, all: false });
  const nd = t.dims.length / 2;
  const cols = [...t.dims.filter((_, i) => i % 2).map((label) => [label]), ...t.mets.map(([, label, kind]) => [label, kind])];
  const val = (row, c) => (c < nd ? row.dims[c] : row.mets[c - nd]);
  const sorted = [...rows].sort((a, b) => {
    const x = val(a, st.col), y = val(b, st.col);
    const d = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
    return st.desc ? -d : d;
  });
  const shown = st.all ? sorted : sorted.slice(0, 10);
  const max = Math.max(...rows.map((r) => r.mets[0]), 1);
  const table = h('table', {},
    h('caption', { class: 'sr', text: t.title + (rows[0].prev ? ', with the change from the previous period' : '') }),
    h('thead', {}, h('tr', {}, cols.map(([label], c) => h('th', {
      scope: 'col', class: c < nd ? null : 'num', 'aria-sort': st.col === c ? (st.desc ? 'descending' : 'ascending') : null,
    }, h('button', {
      type: 'button', text: label, 'data-col': c,
      onclick: () => {
        st.desc = st.col === c ? !st.desc : c >= nd;
        st.col = c;
        renderTable(box, t, rows, pick);
        box.querySelector(`th button[data-col="${c}"]`).focus();
      },
    }))))),
    h('tbody', {}, shown.map((row) => h('tr', {}, cols.map(([, kind], c) => (c === 0
      ? h('td', { class: 'dim', title: row.dims[0] }, pick ? h('button', {
        type: 'button', class: 'value', 'data-dim': t.dims[0], text: row.dims[0] || '(empty)',
        'aria-label': `Filter by ${t.dims[1]} ${row.dims[0] || '(empty)'}`, onclick: () => pick(row.dims[0]),
      }) : row.dims[0] || '(empty)', h('span', { class: 'share', vars: { '--w': (row.mets[0] / max) * 100 + '%' } }))
      : c < nd ? h('td', { text: row.dims[c] }) : metricCell(row.mets[c - nd], row.prev?.[c - nd], kind)))))));
  put(box, table, rows.length > 10 && h('button', {
    type: 'button', class: 'link more', text: st.all ? 'Show top 10' : `Show all ${rows.length}`,
    onclick: () => { st.all = !st.all; renderTable(box, t, rows, pick); },
  }));
}

// ----------------------------------------------------------- report groups

// GROUPS are GA4's standard report groups, each a page of tables. A table
// groups by its first dimension, and by the others where the active
// projection version serves them; it shows the metrics of its list that the
// version serves, top rows by the first. Nothing here assumes the version
// serves a name: GET …/metadata says.
const ACQUISITION = ['sessions', 'engagedSessions', 'engagementRate', 'eventsPerSession', 'keyEvents', 'totalRevenue'];
const FIRST_USER = ['newUsers', 'engagedSessions', 'engagementRate', 'eventsPerSession', 'keyEvents', 'totalRevenue'];
const ITEMS = ['itemsViewed', 'itemsAddedToCart', 'itemsPurchased', 'itemRevenue'];
const TECH = ['activeUsers', 'sessions', 'engagementRate'];
const DEMOGRAPHICS = ['activeUsers', 'newUsers', 'engagedSessions', 'engagementRate'];

const GROUPS = {
  acquisition: { title: 'Acquisition', tables: [
    { id: 'channel', title: 'Session default channel group', dims: ['sessionDefaultChannelGroup'], mets: ACQUISITION },
    { id: 'source-medium', title: 'Session source / medium', dims: ['sessionSourceMedium'], mets: ACQUISITION },
    { id: 'campaign', title: 'Session campaign', dims: ['sessionCampaignName'], mets: ACQUISITION },
    { id: 'first-channel', title: 'First user default channel group', dims: ['firstUserDefaultChannelGroup'], mets: FIRST_USER },
    { id: 'first-source', title: 'First user source', dims: ['firstUserSource'], mets: FIRST_USER },
  ] },
  engagement: { title: 'Engagement', tables: [
    { id: 'pages', title: 'Pages and screens', dims: ['pagePath', 'pageTitle'], mets: ['screenPageViews', 'activeUsers', 'eventCount', 'userEngagementDuration', 'keyEvents'] },
    { id: 'events', title: 'Events', dims: ['eventName'], mets: ['eventCount', 'activeUsers', 'keyEvents', 'totalRevenue'] },
    { id: 'landing', title: 'Landing page', dims: ['landingPage'], mets: ['sessions', 'activeUsers', 'averageSessionDuration', 'keyEvents', 'totalRevenue'] },
  ] },
  monetization: { title: 'Monetization', tables: [
    { id: 'item-name', title: 'Items', dims: ['itemName'], mets: ITEMS },
    { id: 'item-category', title: 'Item category', dims: ['itemCategory'], mets: ITEMS },
    { id: 'item-brand', title: 'Item brand', dims: ['itemBrand'], mets: ITEMS },
    { id: 'transactions', title: 'Transactions', dims: ['transactionId'], mets: ['purchaseRevenue', 'totalRevenue', 'transactions', 'ecommercePurchases', 'averagePurchaseRevenue'] },
  ] },
  tech: { title: 'Tech', tables: [
    { id: 'platform', title: 'Platform', dims: ['platform'], mets: TECH },
    { id: 'os', title: 'Operating system', dims: ['operatingSystem', 'operatingSystemVersion'], mets: TECH },
    { id: 'browser', title: 'Browser', dims: ['browser', 'browserVersion'], mets: TECH },
    { id: 'device', title: 'Device category', dims: ['deviceCategory'], mets: TECH },
    { id: 'screen', title: 'Screen resolution', dims: ['screenResolution'], mets: TECH },
    { id: 'model', title: 'Device model', dims: ['deviceModel'], mets: TECH },
  ] },
  demographics: { title: 'Demographics', tables: [
    { id: 'country', title: 'Country', dims: ['country'], mets: DEMOGRAPHICS },
    { id: 'region', title: 'Region', dims: ['region'], mets: DEMOGRAPHICS },
    { id: 'city', title: 'City', dims: ['city'], mets: DEMOGRAPHICS },
    { id: 'language', title: 'Language', dims: ['language'], mets: DEMOGRAPHICS },
  ] },
};

const TOP = 10;

// metadata is what the active projection version serves: dimension and
// metric API names to their metadata.
async function metadata(v) {
  const p = prop();
  const md = await call(`/v1/properties/${encodeURIComponent(p.id)}/metadata`, { key: p.key, signal: v.signal });
  return {
    dims: new Map((md.dimensions || []).map((d) => [d.apiName, d])),
    mets: new Map((md.metrics || []).map((m) => [m.apiName, m])),
  };
}

// kindOf is how a metric's values are formatted.
const kindOf = (m) => (/Rate$/.test(m.apiName) ? 'pct' : m.type === 'TYPE_SECONDS' ? 'sec'
  : m.type === 'TYPE_CURRENCY' || /Revenue$/.test(m.apiName) ? 'money' : 'num');

function reportPage(v) {
  const g = GROUPS[v.name];
  const p = period();
  put($('#main'),
    toolbar(g.title, p),
    chips(),
    h('div', { class: 'tables report' }, g.tables.map((t) => h('section', { class: 'panel', id: 'g-' + t.id, 'data-table': t.id, 'aria-labelledby': `g-${t.id}-title` },
      h('header', {}, h('h2', { id: `g-${t.id}-title`, text: t.title })),
      h('div', { class: 'scroll loading', 'aria-busy': 'true' }, h('p', { class: 'empty', text: 'Loading…' }))))));
  loadGroup(v, g, p);
}

async function loadGroup(v, g, p) {
  const retry = () => loadGroup(v, g, period());
  try {
    const md = await metadata(v);
    put($('#filters'), chipsOf(md));
    const totals = new Map(); // one totals request per metric list
    const errs = (await Promise.allSettled(g.tables.map((t) => loadGroupTable(v, p, t, md, totals))))
      .filter((r) => r.status === 'rejected').map((r) => r.reason);
    if (errs.length) throw errs.find((e) => e.status === 401 || e.status === 403) || errs[0];
  } catch (e) {
    return failed(v, e, retry);
  }
  if (!v.signal.aborted) banner();
  if (p.cur.endDate === p.now.date) later(v, retry, 60e3);
}

// loadGroupTable fills one table of a report page: its rows and their
// previous period come from one report with two date ranges; its total row
// from a report without dimensions (a TOTAL aggregation would sum both
// ranges).
async function loadGroupTable(v, p, t, md, totals) {
  const box = $(`#g-${t.id} .scroll`);
  const dims = t.dims.filter((d) => md.dims.has(d));
  const mets = t.mets.filter((m) => md.mets.has(m)).map((m) => md.mets.get(m));
  if (dims[0] !== t.dims[0]) return note(box, 'Not in the active projection version.');
  if (!mets.length) return note(box, 'None of its metrics is in the active projection version.');
  const body = { metrics: mets.map((m) => ({ name: m.apiName })), dateRanges: ranges(p) };
  const key = JSON.stringify(body.metrics);
  if (!totals.has(key)) totals.set(key, report(body));
  let r, tot;
  try {
    [r, tot] = await Promise.all([
      report({ ...body, dimensions: dims.map((name) => ({ name })), orderBys: [{ metric: { metricName: mets[0].apiName }, desc: true }], limit: 1000 }),
      totals.get(key)]);
  } catch (e) {
    // A filter the version cannot combine with this table's dimension.
    if (e.status !== 400) throw e;
    return note(box, filters().length ? CANNOT_FILTER : e.message, e.message);
  }
  if (v.signal.aborted) return;
  const rows = byRange(r, dims.length)
    .sort((a, b) => (b.current?.[0] ?? -1) - (a.current?.[0] ?? -1) || (a.key < b.key ? -1 : 1))
    .slice(0, TOP);
  renderGroupTable(box, t, dims.map((d) => md.dims.get(d)), mets, rows, byRange(tot, 0)[0]);
}

// metricCell is a metric's value, and its change from prev unless that is
// null or undefined.
function metricCell(cur, prev, kind, metric) {
  const ch = prev != null && change(cur, prev);
  return h('td', { class: 'num', 'data-metric': metric, title: ch ? `Previous period: ${fmt(prev, kind)}` : null },
    h('span', { class: 'v', text: fmt(cur, kind) }),
    ch && h('span', { class: 'delta ' + ch.cls, text: ch.text }));
}

function note(box, text, title) {
  box.classList.remove('loading');
  box.removeAttribute('aria-busy');
  put(box, h('p', { class: 'note', text, title }));
}

// byRange groups a report's rows by their first nd dimension values: for
// each, the metric values of the current and the previous period (null
// where the period has no row).
function byRange(r, nd) {
  const out = new Map();
  for (const row of rowsOf(r)) {
    const dims = row.dims.slice(0, nd);
    const k = JSON.stringify(dims);
    if (!out.has(k)) out.set(k, { key: k, dims, current: null, previous: null });
    out.get(k)[ui.compare ? row.dims[nd] : 'current'] = row.mets;
  }
  return [...out.values()];
}

// renderGroupTable draws a report page's table: a row per dimension
// values, each value a button that filters by it, then the total row; with
// the comparison, every metric cell shows the change from the previous
// period.
function renderGroupTable(box, t, dims, mets, rows, total) {
  box.classList.remove('loading');
  box.removeAttribute('aria-busy');
  if (!rows.length) return put(box, h('p', { class: 'empty', text: 'No data for this period.' }));
  const cells = (row) => mets.map((m, i) => metricCell(row?.current?.[i] ?? 0, ui.compare ? row?.previous?.[i] ?? 0 : null, kindOf(m), m.apiName));
  const value = (d, val) => h('button', {
    type: 'button', class: 'value', 'data-dim': d.apiName, text: val || '(empty)',
    'aria-label': `Filter by ${d.uiName || d.apiName} ${val || '(empty)'}`, onclick: () => filterBy(d.apiName, val),
  });
  put(box, h('table', {},
    h('caption', { class: 'sr', text: `${t.title}: top ${TOP} by ${mets[0].uiName}` + (ui.compare ? ', with the change from the previous period' : '') }),
    h('thead', {}, h('tr', {},
      dims.map((d) => h('th', { scope: 'col', text: d.uiName || d.apiName })),
      mets.map((m) => h('th', { scope: 'col', class: 'num', 'data-metric': m.apiName, title: m.description, text: m.uiName || m.apiName })))),
    h('tbody', {}, rows.map((row) => h('tr', {},
      h('th', { scope: 'row', class: 'dim' }, value(dims[0], row.dims[0])),
      dims.slice(1).map((d, i) => h('td', { class: 'dim' }, value(d, row.dims[i + 1]))),
      cells(row)))),
    h('tfoot', {}, h('tr', { class: 'total' },
      h('th', { scope: 'row', colspan: dims.length, text: 'Total' }),
      cells(total)))));
}

// ----------------------------------------------------------------- filters

// The filters (dimension = value, exact) are the query of the hash, as in
// #/tech?country=France: reloads and links keep them. Every report page
// and the overview apply them (realtime does not).
const filters = () => [...new URLSearchParams(location.hash.split('?')[1] || '')];

function hashOf(name, fs) {
  const q = new URLSearchParams(fs).toString();
  return '#/' + name + (q ? '?' + q : '');
}

// filterBy sets the filter of a dimension; unfilter removes it.
const filterBy = (dim, value) => go(hashOf(view.name, [...filters().filter(([d]) => d !== dim), [dim, value]]));
const unfilter = (dim) => go(hashOf(view.name, filters().filter(([d]) => d !== dim)));

function dimensionFilter(fs) {
  const ex = fs.map(([fieldName, value]) => ({ filter: { fieldName, stringFilter: { matchType: 'EXACT', value, caseSensitive: true } } }));
  return ex.length > 1 ? { andGroup: { expressions: ex } } : ex[0];
}

// chips is the bar of the filters, each a button that removes it (labelled
// with the dimension's API name until chipsOf relabels it).
const chips = () => h('section', { class: 'chips', id: 'filters', 'aria-label': 'Filters' }, chipsOf(null));

function chipsOf(md) {
  const fs = filters();
  return fs.length > 0 && [h('span', { class: 'muted', text: 'Filtered by' }), fs.map(([d, value]) => {
    const what = `${md?.dims.get(d)?.uiName || d} = ${value || '(empty)'}`;
    return h('button', { type: 'button', class: 'chip', 'data-dim': d, 'aria-label': `Remove the filter ${what}`, onclick: () => unfilter(d) },
      what, h('span', { 'aria-hidden': 'true', text: ' ✕' }));
  })];
}

// ---------------------------------------------------------------- realtime

const RT_TABLES = [
  { id: 'rt-pages', title: 'Pages', dims: ['pagePath', 'Page'], mets: [['screenPageViews', 'Views'], ['activeUsers', 'Active users']] },
  { id: 'rt-events', title: 'Events', dims: ['eventName', 'Event'], mets: [['eventCount', 'Events'], ['activeUsers', 'Active users']] },
];

function realtime(v) {
  put($('#main'), 
    h('section', { class: 'toolbar' }, h('h1', { text: 'Realtime' }), h('span', { class: 'live', id: 'live', text: 'Loading…' })),
    h('section', { class: 'panel', 'aria-labelledby': 'rt-title' },
      h('h2', { id: 'rt-title', class: 'sr', text: 'Last 30 minutes' }),
      h('div', { class: 'big' },
        h('div', { 'data-metric': 'activeUsers' }, h('div', { class: 'label muted', text: 'Active users, last 30 minutes' }), h('div', { class: 'value', id: 'rt-users', text: '…' })),
        h('div', { 'data-metric': 'eventCount' }, h('div', { class: 'label muted', text: 'Events, last 30 minutes' }), h('div', { class: 'value', id: 'rt-events', text: '…' }))),
      h('h3', { class: 'sub', text: 'Active users per minute' }),
      h('div', { class: 'bars', id: 'rt-bars' })),
    h('div', { class: 'tables' }, RT_TABLES.map((t) => h('section', { class: 'panel', 'aria-labelledby': t.id + '-title' },
      h('header', {}, h('h2', { id: t.id + '-title', text: t.title })),
      h('div', { class: 'scroll loading', id: 'table-' + t.id }, h('p', { class: 'empty', text: 'Loading…' }))))));
  loadRealtime(v);
}

async function loadRealtime(v) {
  const metrics = [{ name: 'activeUsers' }, { name: 'eventCount' }];
  try {
    const [tot, byMin, ...tables] = await Promise.all([
      report({ metrics }, true),
      report({ dimensions: [{ name: 'minutesAgo' }], metrics }, true),
      ...RT_TABLES.map((t) => report({
        dimensions: [{ name: t.dims[0] }], metrics: t.mets.map(([m]) => ({ name: m })),
        orderBys: [{ metric: { metricName: t.mets[0][0] }, desc: true }], limit: 50,
      }, true)),
    ]);
    if (v.signal.aborted) return;
    banner();
    const total = rowsOf(tot)[0]?.mets || [0, 0];
    $('#rt-users').textContent = fmt(total[0]);
    $('#rt-events').textContent = fmt(total[1]);
    const per = Array.from({ length: 30 }, () => [0, 0]);
    for (const row of rowsOf(byMin)) {
      const ago = Number(row.dims[0]);
      if (ago >= 0 && ago < 30) per[29 - ago] = row.mets;
    }
    drawBars($('#rt-bars'), per);
    RT_TABLES.forEach((t, i) => renderTable($('#table-' + t.id), t, rowsOf(tables[i])));
    const live = $('#live');
    live.classList.remove('stale');
    live.textContent = 'Live · updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    const live = $('#live');
    if (live && !v.signal.aborted) {
      live.classList.add('stale');
      live.textContent = unreachable(e) ? 'Reconnecting…' : 'Stopped';
    }
    if (unreachable(e)) {
      // Keep polling: the regular 5 s cadence is the retry.
      if (!v.signal.aborted) banner('Server unreachable, retrying…');
    } else {
      return failed(v, e, () => loadRealtime(v));
    }
  }
  later(v, () => loadRealtime(v), 5000);
}

function drawBars(el, per) {
  const W = Math.max(280, el.clientWidth || 600), H = 120, B = 18, gap = 3;
  const max = Math.max(...per.map((m) => m[0]), 1);
  const bw = (W - gap * 29) / 30;
  const svg = h('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': `Active users per minute over the last 30 minutes; ${per[29][0]} in the current minute.`,
  });
  per.forEach(([users, events], i) => {
    const bh = users ? Math.max(2, ((H - B) * users) / max) : 2;
    svg.append(h('rect', { class: users ? 'bar' : 'bar-empty', x: i * (bw + gap), y: H - B - bh, width: bw, height: bh, rx: 2 },
      h('title', { text: `${29 - i === 0 ? 'This minute' : 29 - i + ' min ago'}: ${users} active users, ${events} events` })));
  });
  svg.append(h('text', { class: 'axis', x: 0, y: H - 4, text: '30 min ago' }),
    h('text', { class: 'axis', x: W, y: H - 4, 'text-anchor': 'end', text: 'now' }));
  el.replaceChildren(svg);
}

// ------------------------------------------------------------- projections

const STATE = { PROJECTION_STATE_BUILDING: 'building', PROJECTION_STATE_CAUGHT_UP: 'caught up', PROJECTION_STATE_ACTIVE: 'active', PROJECTION_STATE_RETIRED: 'retired' };

function projections(v) {
  put($('#main'), 
    h('section', { class: 'toolbar' },
      h('div', {}, h('h1', { text: 'Projections' }),
        h('p', { class: 'muted', text: 'Read-model versions built from the event log. Activating or rolling back needs the admin key.' }))),
    h('div', { id: 'proj', 'aria-busy': 'true' }, h('p', { class: 'panel empty', text: 'Loading…' })));
  loadProjections(v);
}

const ago = (ts) => {
  if (!ts) return '—';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(ts).toLocaleString();
};

async function loadProjections(v) {
  try {
    const data = await call('/v1/projections', { key: prop().key, signal: v.signal });
    if (v.signal.aborted) return;
    banner();
    if (!$('#admin-dialog').open) renderProjections(data.projections || []);
  } catch (e) {
    return failed(v, e, () => loadProjections(v));
  }
  later(v, () => loadProjections(v), 5000);
}

function renderProjections(list) {
  const box = $('#proj');
  const focused = document.activeElement?.id;
  box.removeAttribute('aria-busy');
  if (!list.length) {
    box.replaceChildren(h('p', { class: 'panel empty', text: 'No projections.' }));
    return;
  }
  const byName = new Map();
  for (const p of list) byName.set(p.name, [...(byName.get(p.name) || []), p]);
  const head = [['Version'], ['State'], ['Progress'], ['Lag', 'num'], ['Events applied', 'num'], ['Watermark', 'num'], ['', 'num']];
  box.replaceChildren(...[...byName].map(([name, versions]) => h('section', { class: 'panel', 'aria-labelledby': 'proj-' + name },
    h('header', {}, h('h2', { id: 'proj-' + name, text: name })),
    h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, head.map(([c, cls]) => h('th', { scope: 'col', class: cls, text: c })))),
      h('tbody', {}, versions.map(projectionRow)))))));
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

// projectionRow is one version of a projection, with its actions.
function projectionRow(p) {
  const parts = p.partitions || [];
  const end = parts.reduce((s, x) => s + Number(x.endOffset || 0), 0);
  const done = parts.reduce((s, x) => s + Math.min(Number(x.offset || 0), Number(x.endOffset || 0)), 0);
  const frac = end ? done / end : 1;
  const state = STATE[p.state] || 'unknown';
  const id = `${p.name}-${p.version}`;
  const progress = h('span', {
    class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': Math.floor(frac * 100), 'aria-label': `${p.version} progress`,
  }, h('span', { vars: { '--w': frac * 100 + '%' } }));
  const activate = !p.active && h('button', {
    type: 'button', id: id + '-activate', text: 'Activate',
    onclick: () => adminAction(`Activate ${p.name} ${p.version}? Reports will then be answered by ${p.version}.`,
      `/v1/projections/${encodeURIComponent(p.name)}/versions/${encodeURIComponent(p.version)}:activate`),
  });
  const rollback = p.active && p.previousVersion && h('button', {
    type: 'button', class: 'ghost', id: id + '-rollback', text: `Roll back to ${p.previousVersion}`,
    onclick: () => adminAction(`Roll ${p.name} back to ${p.previousVersion}? Reports will then be answered by ${p.previousVersion}.`,
      `/v1/projections/${encodeURIComponent(p.name)}:rollback`),
  });
  return h('tr', { 'data-version': p.version },
    h('td', {}, h('strong', { text: p.version }), p.description && h('div', { class: 'muted', text: p.description })),
    h('td', {}, h('span', { class: 'badge ' + (p.active ? 'active' : state === 'building' ? 'building' : ''), text: p.active ? 'active' : state })),
    h('td', {}, progress, pf.format(Math.floor(frac * 1000) / 1000),
      p.etaSeconds > 0 && state === 'building' && h('div', { class: 'muted', text: `about ${Math.ceil(p.etaSeconds)} s left` })),
    h('td', { class: 'num', text: nf.format(Number(p.lag || 0)) }),
    h('td', { class: 'num', text: nf.format(Number(p.eventsApplied || 0)) }),
    h('td', { class: 'num', text: ago(p.watermark), title: p.watermark || '' }),
    h('td', { class: 'num' }, h('div', { class: 'actions' }, activate, rollback)));
}

// askAdmin shows the confirmation dialog, with a key field when no admin
// key is known yet; it resolves to the key, or null when cancelled. ok names
// the confirming button, danger colours it.
let settleAdmin = null;

function askAdmin(what, error, { ok, danger } = {}) {
  settleAdmin?.(null); // at most one question at a time
  const dlg = $('#admin-dialog'), form = $('#admin-form'), input = $('#admin-key');
  const known = load('admin');
  $('#admin-title').textContent = known ? 'Confirm' : 'Admin key required';
  $('#admin-what').textContent = what;
  $('#admin-error').textContent = error || '';
  $('#admin-ok').textContent = ok || 'Confirm';
  $('#admin-ok').classList.toggle('danger', !!danger);
  input.value = '';
  form.querySelector('label').hidden = !!known;
  input.hidden = !!known;
  input.required = !known;
  return new Promise((resolve) => {
    settleAdmin = (key) => {
      settleAdmin = null;
      if (dlg.open) dlg.close();
      resolve(key);
    };
    dlg.showModal();
    (known ? $('#admin-ok') : input).focus();
  });
}
$('#admin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  settleAdmin?.(load('admin') || $('#admin-key').value.trim() || null);
});
$('#admin-cancel').addEventListener('click', () => settleAdmin?.(null));
$('#admin-dialog').addEventListener('cancel', () => settleAdmin?.(null)); // Escape
$('#admin-dialog').addEventListener('close', (e) => e.target.open || settleAdmin?.(null));

async function adminAction(what, path) {
  const v = view;
  let error = '';
  for (;;) {
    const key = await askAdmin(what, error);
    if (!key) return;
    try {
      await call(path, { key, body: {}, signal: v.signal });
      save('admin', key);
      banner();
      return loadProjections(v);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 401 || e.status === 403) {
        save('admin', null);
        error = 'Admin key expired or wrong: enter it again.';
        continue;
      }
      return banner(unreachable(e) ? 'Server unreachable: try again.' : 'The server refused: ' + e.message, 'bad');
    }
  }
}

// ---------------------------------------------------------------- settings

// Settings manage properties and their API keys through the AdminService
// (Connect's JSON protocol, on this origin) with the admin key, asked for and
// kept like the projections' (askAdmin, sessionStorage). The secrets of new
// keys are shown once, in the page only: never in a URL or in storage.
const ADMIN_API = '/sextant.admin.v1.AdminService/';
const PAGE_SIZE = 20;
const MAX_GRACE_HOURS = 30 * 24;
const SCOPES = { KEY_SCOPE_WRITE: 'write', KEY_SCOPE_READ: 'read', KEY_SCOPE_MEASUREMENT: 'measurement' };
const KEY_STATES = { KEY_STATE_ACTIVE: 'active', KEY_STATE_EXPIRING: 'expiring', KEY_STATE_REVOKED: 'revoked' };
const PROPERTY_FIELDS = 'displayName,timeZone,allowedOrigins'; // a FieldMask in proto3 JSON

// adminCall calls a method of the AdminService. It asks for the admin key
// when none is known, and for a confirmation when confirm ({what, ok,
// danger}) is given; a refused key is forgotten and asked for again. It
// resolves to the answer, or to null when the admin cancels.
async function adminCall(method, body, confirm) {
  const v = view;
  let error = '';
  for (;;) {
    let key = load('admin');
    if (!key || confirm) {
      key = await askAdmin(confirm?.what || 'Settings manage properties and their API keys: enter the admin key.',
        error, confirm || { ok: 'Continue' });
      if (!key || v.signal.aborted) return null;
    }
    try {
      const r = await call(ADMIN_API + method, { key, body, signal: v.signal });
      save('admin', key);
      return r;
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) throw e;
      save('admin', null);
      error = 'Admin key expired or wrong: enter it again.';
    }
  }
}

const when = (ts) => (ts ? new Date(ts).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');
const originsOf = (text) => text.split(/[\s,]+/).filter(Boolean);
const problem = (e) => (unreachable(e) ? 'Server unreachable: try again.' : e.message);

function localZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
}

function zones() {
  let list = [];
  try { list = Intl.supportedValuesOf('timeZone'); } catch { /* an older browser: free text only */ }
  return ['UTC', ...list.filter((z) => z !== 'UTC')];
}

// say announces the outcome of an action (the status line is aria-live).
function say(text) {
  const el = $('#settings-status');
  if (el) el.textContent = text;
}

// busy disables a button while its request runs; it returns the undo.
function busy(btn, text) {
  const was = btn.textContent;
  btn.disabled = true;
  btn.textContent = text;
  return () => {
    btn.disabled = false;
    btn.textContent = was;
  };
}

function labelled(label, input, hint) {
  if (hint) input.setAttribute('aria-describedby', input.id + '-hint');
  return h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input,
    hint && h('small', { class: 'hint', id: input.id + '-hint', text: hint }));
}

// markInvalid flags the inputs whose field (JSON name) the server's message
// names, and focuses the first.
function markInvalid(message, fields) {
  let first = null;
  for (const [input, name] of fields) {
    const bad = !!message && message.includes(name);
    if (bad) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    if (bad && !first) first = input;
  }
  first?.focus();
}

function settings(v) {
  v.list = [];
  v.next = '';
  v.selected = null;
  put($('#main'),
    h('section', { class: 'toolbar' },
      h('div', {}, h('h1', { text: 'Settings' }),
        h('p', { class: 'muted', text: 'Properties and their API keys. Changes need the admin key and reach every Sextant process within a second.' }),
        h('p', { id: 'settings-status', class: 'status', role: 'status', 'aria-live': 'polite' }))),
    h('div', { class: 'settings' },
      h('section', { class: 'panel', 'aria-labelledby': 'props-title' },
        h('header', {}, h('h2', { id: 'props-title', text: 'Properties' }), h('span', { id: 'props-count', class: 'muted' })),
        h('div', { id: 'props', class: 'scroll', tabindex: '-1', 'aria-busy': 'true' }, h('p', { class: 'empty', text: 'Loading…' })),
        h('button', { type: 'button', id: 'props-more', class: 'ghost more', hidden: true, text: 'Show more', onclick: () => loadProps(v, true) })),
      newProperty(v)),
    h('div', { id: 'detail' }),
    h('datalist', { id: 'tz-list' }, zones().map((z) => h('option', { value: z }))));
  loadProps(v);
}

// loadProps lists the first page of properties, or with more the next one.
async function loadProps(v, more) {
  const done = more && busy($('#props-more'), 'Loading…');
  try {
    const r = await adminCall('ListProperties', { pageSize: PAGE_SIZE, pageToken: more ? v.next : '' });
    if (v.signal.aborted) return;
    if (!r) return needKey(v);
    banner();
    const seen = new Set(more ? v.list.map((p) => p.propertyId) : []);
    const page = (r.properties || []).filter((p) => !seen.has(p.propertyId)).map((p) => ({ allowedOrigins: [], ...p }));
    v.list = more ? [...v.list, ...page] : page;
    v.next = r.nextPageToken || '';
    renderProps(v);
    if (more && !v.next && page.length) $(`#props tr[data-id="${CSS.escape(page[0].propertyId)}"] button`)?.focus();
  } catch (e) {
    failed(v, e, () => loadProps(v, more));
  } finally {
    if (done) done();
  }
}

function needKey(v) {
  const box = $('#props');
  box.removeAttribute('aria-busy');
  put(box, h('div', { class: 'empty' },
    h('p', { text: 'Settings need the admin key (sxa_…).' }),
    h('button', { type: 'button', id: 'admin-signin', text: 'Enter the admin key', onclick: () => loadProps(v) })));
}

function renderProps(v) {
  const box = $('#props');
  if (!box) return;
  box.removeAttribute('aria-busy');
  $('#props-more').hidden = !v.next;
  const n = nf.format(v.list.length);
  $('#props-count').textContent = !v.list.length ? '' : v.next ? `first ${n}` : `${n} in all`;
  if (!v.list.length) {
    put(box, h('p', { class: 'empty', text: 'No properties yet: create the first one.' }));
    return;
  }
  const head = [['Name'], ['Property ID'], ['Time zone', 'wide'], ['Allowed origins', 'wide'], ['', 'num']];
  put(box, h('table', {},
    h('caption', { class: 'sr', text: 'Properties' }),
    h('thead', {}, h('tr', {}, head.map(([c, cls]) => h('th', { scope: 'col', class: cls, text: c })))),
    h('tbody', {}, v.list.map((p) => h('tr', {
      'data-id': p.propertyId, class: p.propertyId === v.selected ? 'selected' : null, 'aria-current': p.propertyId === v.selected ? 'true' : null,
    },
    h('td', { class: 'name' }, h('strong', { text: p.displayName })),
    h('td', { class: 'mono', text: p.propertyId }),
    h('td', { class: 'tz wide', text: p.timeZone || 'UTC' }),
    h('td', { class: 'origins wide', text: p.allowedOrigins.join(', ') || 'any' }),
    h('td', { class: 'num' }, h('button', {
      type: 'button', class: 'ghost manage', text: 'Manage', 'aria-label': `Manage ${p.displayName}`,
      onclick: () => select(v, p.propertyId, true),
    })))))));
}

function select(v, id, focus) {
  v.selected = id;
  renderProps(v);
  renderDetail(v);
  if (focus) $('#prop-detail')?.focus();
}

// propertyInputs makes a property form's inputs (ids prefix-name,
// prefix-tz, prefix-origins) holding p's settings, and the API field each
// one's errors are reported on.
function propertyInputs(prefix, p) {
  const name = h('input', { id: `${prefix}-name`, required: true, maxlength: 200, autocomplete: 'off', value: p.displayName });
  const tz = h('input', { id: `${prefix}-tz`, list: 'tz-list', autocomplete: 'off', spellcheck: 'false', value: p.timeZone });
  const origins = h('input', { id: `${prefix}-origins`, autocomplete: 'off', spellcheck: 'false', placeholder: 'https://www.example.com', value: p.allowedOrigins.join(', ') });
  return { name, tz, origins, fields: [[name, 'displayName'], [tz, 'timeZone'], [origins, 'allowedOrigins']] };
}

// onPropertySubmit runs save when the property form is submitted with a
// name: the button shows busyText meanwhile, and an error of the server
// is shown and marks the field it names.
function onPropertySubmit(form, { name, err, fields, submit, busyText }, save) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    say('');
    if (!name.value.trim()) {
      err.textContent = 'Enter a name.';
      return markInvalid('displayName', fields);
    }
    markInvalid('', fields);
    const done = busy(submit, busyText);
    try {
      await save();
    } catch (e2) {
      if (e2.name === 'AbortError') return;
      err.textContent = problem(e2);
      markInvalid(e2.message, fields);
    } finally {
      done();
    }
  });
}

function newProperty(v) {
  const { name, tz, origins, fields } = propertyInputs('new', { displayName: '', timeZone: localZone(), allowedOrigins: [] });
  const err = h('p', { id: 'new-error', class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'new-submit', text: 'Create property' });
  const form = h('form', { id: 'new-property', class: 'stack', novalidate: true },
    labelled('Name', name),
    labelled('Time zone', tz, 'IANA name, e.g. Europe/Paris: report days start at midnight there.'),
    labelled('Allowed origins', origins, 'Sites that may send hits, comma-separated; empty allows any.'),
    err,
    h('div', { class: 'actions' }, submit));
  onPropertySubmit(form, { name, err, fields, submit, busyText: 'Creating…' }, async () => {
    const r = await adminCall('CreateProperty', {
      property: { displayName: name.value.trim(), timeZone: tz.value.trim(), allowedOrigins: originsOf(origins.value) },
    });
    if (!r) return;
    const p = { allowedOrigins: [], ...r.property };
    v.list = [p, ...v.list.filter((x) => x.propertyId !== p.propertyId)];
    form.reset();
    select(v, p.propertyId);
    showSecrets(`Keys of ${p.displayName}`, [r.writeKey, r.readKey], p);
    say(`Created ${p.displayName} (property ${p.propertyId}).`);
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'new-title' },
    h('header', {}, h('h2', { id: 'new-title', text: 'New property' })), form);
}

// renderDetail shows the selected property: its settings, its keys.
function renderDetail(v) {
  const box = $('#detail');
  const p = v.list.find((x) => x.propertyId === v.selected);
  if (!p) return box.replaceChildren();
  const { name, tz, origins, fields } = propertyInputs('edit', { ...p, timeZone: p.timeZone || 'UTC' });
  const err = h('p', { id: 'edit-error', class: 'error tight', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'edit-save', text: 'Save changes' });
  const form = h('form', { id: 'edit-property', class: 'form-grid', novalidate: true, 'aria-labelledby': 'edit-title' },
    labelled('Name', name),
    labelled('Time zone', tz, 'IANA name, e.g. Europe/Paris.'),
    labelled('Allowed origins', origins, 'Comma-separated; empty allows any site.'),
    err,
    h('div', { class: 'actions' }, submit));
  onPropertySubmit(form, { name, err, fields, submit, busyText: 'Saving…' }, async () => {
    const r = await adminCall('UpdateProperty', {
      property: { propertyId: p.propertyId, displayName: name.value.trim(), timeZone: tz.value.trim(), allowedOrigins: originsOf(origins.value) },
      updateMask: PROPERTY_FIELDS,
    });
    if (!r) return;
    Object.assign(p, { allowedOrigins: [] }, r.property);
    name.value = p.displayName;
    tz.value = p.timeZone || 'UTC';
    origins.value = p.allowedOrigins.join(', ');
    $('#detail-title').textContent = p.displayName;
    renderProps(v);
    retime(p);
    say(`Saved ${p.displayName}.`);
  });
  const newKey = (scope, id, text) => h('button', {
    type: 'button', id, class: 'ghost', text, onclick: (e) => createKey(v, p, scope, e.currentTarget),
  });
  put(box, h('section', { class: 'panel', id: 'prop-detail', 'data-id': p.propertyId, 'aria-labelledby': 'detail-title', tabindex: '-1' },
    h('header', {},
      h('div', {}, h('h2', { id: 'detail-title', text: p.displayName }),
        h('div', { class: 'muted', text: `Property ${p.propertyId} · measurement id ${p.measurementId} · created ${when(p.createTime)}` })),
      h('button', { type: 'button', id: 'delete-property', class: 'ghost danger', text: 'Delete property', onclick: () => deleteProperty(v, p) })),
    h('p', { id: 'detail-error', class: 'error tight', role: 'alert' }),
    h('div', { id: 'secrets' }),
    h('h3', { id: 'edit-title', class: 'sub', text: 'Settings' }),
    form,
    h('section', { class: 'keys', 'aria-labelledby': 'keys-title' },
      h('div', { class: 'keys-head' },
        h('h3', { id: 'keys-title', class: 'sub', text: 'API keys' }),
        h('div', { class: 'actions' }, newKey('KEY_SCOPE_WRITE', 'new-write-key', 'New write key'), newKey('KEY_SCOPE_READ', 'new-read-key', 'New read key'),
          newKey('KEY_SCOPE_MEASUREMENT', 'new-mp-secret', 'New MP secret'))),
      h('p', { class: 'muted', text: 'Write keys send hits (the tag, collect); read keys read reports; MP secrets are the api_secret of GA4 Measurement Protocol hits (/mp/collect with the measurement id). Rotating makes a new key and can keep the old one working for a grace period.' }),
      h('p', { id: 'keys-error', class: 'error tight', role: 'alert' }),
      h('div', { id: 'keys', class: 'scroll', tabindex: '-1', 'aria-busy': 'true' }, h('p', { class: 'empty', text: 'Loading…' })))));
  loadKeys(v, p);
}

// retime keeps the time zone of a property this tab reads reports of.
function retime(p) {
  const props = load('props', []);
  const mine = props.find((x) => x.id === p.propertyId);
  if (!mine) return;
  mine.tz = p.timeZone || 'UTC';
  save('props', props);
}

// forget drops a deleted property from the ones this tab reads reports of.
function forget(id) {
  const props = load('props', []).filter((x) => x.id !== id);
  save('props', props);
  if (load('current') === id) save('current', props[0]?.id ?? null);
  shell(true);
}

async function deleteProperty(v, p) {
  const err = $('#detail-error');
  err.textContent = '';
  say('');
  try {
    const r = await adminCall('DeleteProperty', { propertyId: p.propertyId }, {
      what: `Delete ${p.displayName} (property ${p.propertyId})? All its keys stop working at once; its events stay stored until they are purged.`,
      ok: 'Delete', danger: true,
    });
    if (!r) return;
    v.list = v.list.filter((x) => x !== p);
    v.selected = null;
    renderProps(v);
    renderDetail(v);
    forget(p.propertyId);
    say(`Deleted ${p.displayName} (property ${p.propertyId}).`);
    $('#props').focus();
  } catch (e) {
    if (e.name !== 'AbortError') err.textContent = problem(e);
  }
}

// showSecrets shows the secrets of new keys, once: they are in the page
// until it is left or the admin hides them, and nowhere else.
function showSecrets(title, keys, created) {
  const box = $('#secrets');
  if (!box) return;
  const read = keys.find((k) => k?.scope === 'KEY_SCOPE_READ');
  put(box, h('section', { class: 'secrets', id: 'secrets-panel', 'aria-labelledby': 'secrets-title', tabindex: '-1' },
    h('h3', { id: 'secrets-title', text: title }),
    h('p', { class: 'once', id: 'secrets-note' },
      h('strong', { text: 'Shown only this once. ' }),
      'Copy the keys now: Sextant stores only a hash of each, so they cannot be shown again (a lost key can be rotated).'),
    keys.filter((k) => k?.secret).map((k) => {
      const scope = SCOPES[k.scope] || 'new';
      const input = h('input', { id: 'secret-' + scope, class: 'secret', readonly: true, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'secrets-note' });
      input.value = k.secret; // a property, not an attribute
      const btn = h('button', { type: 'button', class: 'ghost', text: 'Copy', 'aria-label': `Copy the ${scope} key`, onclick: () => copy(input, btn) });
      return h('div', { class: 'field' },
        h('label', { for: input.id, text: scope === 'write' ? 'Write key, for the tag and collect' : scope === 'read' ? 'Read key, for reports'
          : scope === 'measurement' ? 'MP secret, the api_secret of Measurement Protocol hits' : 'Key' }),
        h('div', { class: 'copy' }, input, btn));
    }),
    h('div', { class: 'actions' },
      created && read?.secret && h('button', {
        type: 'button', id: 'secrets-reports', class: 'ghost', text: 'Open its reports',
        onclick: () => openReports(created, read.secret),
      }),
      h('button', {
        type: 'button', id: 'secrets-done', text: 'I have copied them',
        onclick: () => {
          box.replaceChildren();
          $('#prop-detail')?.focus();
        },
      }))));
  box.firstChild.focus();
}

async function copy(input, btn) {
  input.focus();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    btn.textContent = 'Copied';
  } catch {
    btn.textContent = 'Selected: copy it';
  }
  setTimeout(() => { btn.textContent = 'Copy'; }, 2500);
}

// openReports signs this tab in to a new property with its read key, kept
// like any read key (sessionStorage), and shows its overview.
function openReports(p, key) {
  save('props', [...load('props', []).filter((x) => x.id !== p.propertyId), { id: p.propertyId, key, tz: p.timeZone || 'UTC' }]);
  save('current', p.propertyId);
  go('#/overview');
}

async function loadKeys(v, p) {
  const mine = () => !v.signal.aborted && $('#prop-detail')?.dataset.id === p.propertyId;
  try {
    const r = await adminCall('ListKeys', { propertyId: p.propertyId, showRevoked: true });
    if (!mine()) return;
    if (!r) return put($('#keys'), h('p', { class: 'empty', text: 'The keys need the admin key.' }));
    renderKeys(p, r.keys || []);
  } catch (e) {
    if (e.name !== 'AbortError' && mine()) $('#keys-error').textContent = problem(e);
  }
}

const KEY_ORDER = { KEY_STATE_ACTIVE: 0, KEY_STATE_EXPIRING: 1, KEY_STATE_REVOKED: 2 };

function renderKeys(p, keys) {
  const box = $('#keys');
  const focused = document.activeElement?.id || '';
  box.removeAttribute('aria-busy');
  $('#keys-error').textContent = '';
  if (!keys.length) {
    put(box, h('p', { class: 'empty', text: 'No keys.' }));
    return;
  }
  const sorted = [...keys].sort((a, b) => (KEY_ORDER[a.state] ?? 3) - (KEY_ORDER[b.state] ?? 3) ||
    Date.parse(b.createTime || 0) - Date.parse(a.createTime || 0));
  const head = [['Scope'], ['Key'], ['State'], ['Created'], ['Expires'], ['', 'num']];
  put(box, h('table', {},
    h('caption', { class: 'sr', text: `API keys of ${p.displayName}` }),
    h('thead', {}, h('tr', {}, head.map(([c, cls]) => h('th', { scope: 'col', class: cls, text: c })))),
    h('tbody', {}, sorted.map((k) => keyRow(p, k)))));
  // Keep the focus; on the table when its button went (revoked).
  const el = focused && document.getElementById(focused);
  if (el) el.focus();
  else if (/^(rotate|revoke|grace)-/.test(focused)) box.focus();
}

function keyRow(p, k) {
  const scope = SCOPES[k.scope] || 'unknown';
  const state = KEY_STATES[k.state] || 'unknown';
  const what = `${scope} key ${k.hint}`;
  const tr = h('tr', { 'data-key-id': k.keyId, 'data-scope': k.scope, 'data-state': k.state });
  put(tr,
    h('td', { text: scope === 'write' ? 'Write' : scope === 'read' ? 'Read' : scope }),
    h('td', {}, h('code', { text: k.hint })),
    h('td', {}, h('span', { class: 'badge ' + state, text: state })),
    h('td', { text: when(k.createTime), title: k.createTime || '' }),
    h('td', { class: 'expires', text: when(k.expireTime), title: k.expireTime || '' }),
    h('td', { class: 'num' }, state !== 'revoked' && h('div', { class: 'actions' },
      state === 'active' && h('button', {
        type: 'button', id: 'rotate-' + k.keyId, class: 'ghost rotate', text: 'Rotate', 'aria-label': `Rotate ${what}`, 'aria-expanded': 'false',
        onclick: (e) => rotateForm(p, k, tr, e.currentTarget),
      }),
      h('button', {
        type: 'button', id: 'revoke-' + k.keyId, class: 'ghost danger revoke', text: 'Revoke', 'aria-label': `Revoke ${what}`,
        onclick: () => revokeKey(p, k),
      }))));
  return tr;
}

async function createKey(v, p, scope, btn) {
  const done = busy(btn, 'Creating…');
  $('#keys-error').textContent = '';
  say('');
  try {
    const r = await adminCall('CreateKey', { propertyId: p.propertyId, scope });
    if (!r) return;
    showSecrets(`New ${SCOPES[scope]} key of ${p.displayName}`, [r.key]);
    say(`Created a ${SCOPES[scope]} key for ${p.displayName}.`);
    loadKeys(v, p);
  } catch (e) {
    if (e.name !== 'AbortError') $('#keys-error').textContent = problem(e);
  } finally {
    done();
  }
}

// rotateForm opens (or closes) the row under a key that asks for the grace
// period of its rotation.
function rotateForm(p, k, tr, btn) {
  const v = view;
  const next = tr.nextElementSibling;
  const close = (row) => {
    row.remove();
    btn.setAttribute('aria-expanded', 'false');
  };
  if (next?.classList.contains('rotate-row')) {
    close(next);
    return;
  }
  const scope = SCOPES[k.scope] || 'unknown';
  const id = 'grace-' + k.keyId;
  const hours = h('input', { id, class: 'short', type: 'number', min: '0', max: String(MAX_GRACE_HOURS), step: 'any', inputmode: 'decimal', placeholder: '0' });
  const err = h('p', { class: 'error tight', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'rotate-ok-' + k.keyId, text: 'Rotate now' });
  const form = h('form', { class: 'inline', novalidate: true },
    h('label', { for: id, text: `Keep the old ${scope} key ${k.hint} working for (hours, optional)` }),
    hours,
    submit,
    h('button', { type: 'button', class: 'ghost', text: 'Cancel', onclick: () => { close(row); btn.focus(); } }),
    err);
  const row = h('tr', { class: 'rotate-row', id: 'rotate-row-' + k.keyId }, h('td', { colspan: '6' }, form));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = hours.value.trim();
    const n = text === '' ? 0 : Number(text);
    if (hours.validity.badInput || !Number.isFinite(n) || n < 0 || n > MAX_GRACE_HOURS) {
      err.textContent = `Enter a number of hours from 0 to ${MAX_GRACE_HOURS} (30 days), or nothing.`;
      hours.setAttribute('aria-invalid', 'true');
      hours.focus();
      return;
    }
    hours.removeAttribute('aria-invalid');
    err.textContent = '';
    say('');
    const body = { propertyId: p.propertyId, keyId: k.keyId };
    if (n > 0) body.gracePeriod = Math.round(n * 3600) + 's';
    const done = busy(submit, 'Rotating…');
    try {
      const r = await adminCall('RotateKey', body);
      if (!r) return;
      showSecrets(`New ${scope} key of ${p.displayName}`, [r.key]);
      say(n > 0 ? `Rotated the ${scope} key ${k.hint}: it keeps working until ${when(r.oldKey?.expireTime)}.`
        : `Rotated the ${scope} key ${k.hint}: it no longer works.`);
      loadKeys(v, p);
    } catch (e2) {
      if (e2.name !== 'AbortError') err.textContent = problem(e2);
    } finally {
      done();
    }
  });
  tr.after(row);
  btn.setAttribute('aria-expanded', 'true');
  btn.setAttribute('aria-controls', row.id);
  hours.focus();
}

async function revokeKey(p, k) {
  const v = view;
  const what = `${SCOPES[k.scope] || 'unknown'} key ${k.hint}`;
  $('#keys-error').textContent = '';
  say('');
  try {
    const r = await adminCall('RevokeKey', { propertyId: p.propertyId, keyId: k.keyId }, {
      what: `Revoke the ${what} of ${p.displayName}? Anything that uses it is refused within a second. This cannot be undone.`,
      ok: 'Revoke', danger: true,
    });
    if (!r) return;
    say(`Revoked the ${what}.`);
    loadKeys(v, p);
  } catch (e) {
    if (e.name !== 'AbortError') $('#keys-error').textContent = problem(e);
  }
}

route();
