// Sextant dashboard: a small single-page app over Sextant's public REST API
// (runReport, runRealtimeReport, projections). Plain ES2020, no framework.
// Keys live in sessionStorage only: they are gone when the tab closes.
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
const fmt = (v, kind) => (kind === 'pct' ? pf.format(v) : nf.format(Math.round(v * 100) / 100));

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
  put(sel, load('props', []).map((p) => h('option', { value: p.id, selected: p.id === cur, text: 'Property ' + p.id })));
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function route(focus) {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const views = { overview, realtime, projections };
  if (!prop()) return signIn({});
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

// ----------------------------------------------------------------- sign in

function signIn(prefill, cancellable) {
  startView('signin');
  banner();
  shell(!!(cancellable || prefill.id) && !!prop());
  const err = h('p', { class: 'error', role: 'alert' });
  const id = h('input', { id: 'signin-id', name: 'property', required: true, inputmode: 'numeric', autocomplete: 'off', value: prefill.id || '' });
  const key = h('input', { id: 'signin-key', name: 'key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'sxr_…' });
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const form = h('form', { id: 'signin', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'signin-id', text: 'Property ID' }), id),
    h('div', { class: 'field' }, h('label', { for: 'signin-key', text: 'Read key' }), key),
    err,
    h('div', { class: 'actions' },
      cancellable && prop() && h('button', { type: 'button', class: 'ghost', text: 'Cancel', onclick: () => route() }),
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
    form));
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

function overview(v) {
  const p = period();
  const field = (label, id, input) => h('div', { class: 'field' }, h('label', { for: id, text: label }), input);
  const opt = (value, text, cur) => h('option', { value, text, selected: value === cur });
  const change = (k) => (e) => {
    ui[k] = e.target.type === 'checkbox' ? e.target.checked : e.target.value;
    save('ui', ui);
    route();
  };
  const preset = h('select', { id: 'range', onchange: change('preset') },
    opt('1', 'Today', ui.preset), opt('7', 'Last 7 days', ui.preset), opt('28', 'Last 28 days', ui.preset),
    opt('90', 'Last 90 days', ui.preset), opt('custom', 'Custom…', ui.preset));
  const custom = ui.preset === 'custom' && [
    field('From', 'from', h('input', { id: 'from', type: 'date', value: p.cur.startDate, max: p.now.date, onchange: change('start') })),
    field('To', 'to', h('input', { id: 'to', type: 'date', value: p.cur.endDate, max: p.now.date, onchange: change('end') })),
  ];
  const metric = h('select', { id: 'metric', onchange: change('metric') }, CARDS.map(([m, label]) => opt(m, label, ui.metric)));
  const grain = h('select', { id: 'grain', onchange: change('grain') },
    opt('auto', 'Auto', ui.grain), opt('date', 'By day', ui.grain), opt('dateHour', 'By hour', ui.grain));

  put($('#main'), 
    h('section', { class: 'toolbar', 'aria-label': 'Report period' },
      h('div', {},
        h('h1', { text: 'Overview' }),
        h('p', { class: 'period', id: 'period', text: rangeText(p.cur) + (ui.compare ? ' compared with ' + rangeText(p.prev) : '') })),
      h('div', { class: 'fields' },
        field('Date range', 'range', preset), custom,
        h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'compare', checked: ui.compare, onchange: change('compare') }), 'Compare to previous period'))),
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
    const ch = prev ? (cur - prev) / prev : cur ? Infinity : 0;
    d.className = 'delta ' + (ch > 0 ? 'up' : ch < 0 ? 'down' : 'muted');
    put(d, ch === Infinity ? '▲ new' : !cur && !prev ? '—' : (ch > 0 ? '▲ ' : ch < 0 ? '▼ ' : '') + pf.format(Math.abs(ch)),
      h('span', { class: 'sr', text: ' compared with the previous period' }));
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
  const r = await report({
    dimensions: dims, metrics: t.mets.map(([m]) => ({ name: m })), dateRanges: [p.cur],
    orderBys: [{ metric: { metricName: t.mets[0][0] }, desc: true }], limit: 250,
  });
  renderTable($('#table-' + t.id), t, rowsOf(r));
}

// renderTable draws a sortable table: dimension columns, then metrics.
function renderTable(box, t, rows) {
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
    h('caption', { class: 'sr', text: t.title }),
    h('thead', {}, h('tr', {}, cols.map(([label], c) => h('th', {
      scope: 'col', class: c < nd ? null : 'num', 'aria-sort': st.col === c ? (st.desc ? 'descending' : 'ascending') : null,
    }, h('button', {
      type: 'button', text: label, 'data-col': c,
      onclick: () => {
        st.desc = st.col === c ? !st.desc : c >= nd;
        st.col = c;
        renderTable(box, t, rows);
        box.querySelector(`th button[data-col="${c}"]`).focus();
      },
    }))))),
    h('tbody', {}, shown.map((row) => h('tr', {}, cols.map(([, kind], c) => (c === 0
      ? h('td', { class: 'dim', title: row.dims[0] }, row.dims[0] || '(empty)', h('span', { class: 'share', vars: { '--w': (row.mets[0] / max) * 100 + '%' } }))
      : h('td', { class: c < nd ? null : 'num' }, c < nd ? row.dims[c] : fmt(row.mets[c - nd], kind))))))));
  put(box, table, rows.length > 10 && h('button', {
    type: 'button', class: 'link more', text: st.all ? 'Show top 10' : `Show all ${rows.length}`,
    onclick: () => { st.all = !st.all; renderTable(box, t, rows); },
  }));
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
// key is known yet; it resolves to the key, or null when cancelled.
let settleAdmin = null;

function askAdmin(what, error) {
  const dlg = $('#admin-dialog'), form = $('#admin-form'), input = $('#admin-key');
  const known = load('admin');
  $('#admin-title').textContent = known ? 'Confirm' : 'Admin key required';
  $('#admin-what').textContent = what;
  $('#admin-error').textContent = error || '';
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

route();
