// Sextant web tag: sends GA4-style events to a Sextant server. See README.md
// for the install snippet and the API: sextant('config', key, {server}),
// sextant('event', name, params), sextant('consent', {analytics_storage}),
// sextant('optout'), sextant('optin'), window['sextant-disable'] = true.
(() => {
  'use strict';
  const w = window, d = document, nav = navigator;
  if (w.sextant && w.sextant.loaded) return;

  const SESSION_MS = 30 * 60e3, BATCH = 25, DELAY = 1000;
  const NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/, RESERVED = /^(ga_|google_|firebase_)/;
  const MAX = { page_location: 1000, page_referrer: 1000, page_title: 300 };
  const script = d.currentScript;

  // Storage: localStorage, else memory (nothing persists, no cookies).
  let store;
  try {
    store = w.localStorage;
    store.setItem('sextant_t', '1');
    store.removeItem('sextant_t');
  } catch {
    const m = {};
    store = { getItem: (k) => m[k] ?? null, setItem: (k, v) => { m[k] = String(v); }, removeItem: (k) => { delete m[k]; } };
  }

  let cfg = null;   // {key, server, userId}
  let denied = false; // consent: analytics_storage denied
  let queue = [], timer = 0, cid = '';
  let page = '';    // page_location of the current page view
  let referrer = d.referrer;
  let scrolled = false;
  let visibleSince = d.visibilityState === 'visible' ? Date.now() : 0, engaged = 0;

  const off = () => denied || w['sextant-disable'] === true || store.getItem('sextant_optout') === '1' ||
    nav.doNotTrack === '1' || w.doNotTrack === '1' || nav.globalPrivacyControl === true;
  const rand = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');
  const http = (u) => /^https?:/.test(u || '');
  const here = () => location.href.split('#')[0];

  // session returns the GA4 session (start time in Unix seconds and number)
  // and whether it starts now: after 30 minutes of inactivity.
  const session = () => {
    const now = Date.now();
    let s;
    try { s = JSON.parse(store.getItem('sextant_s')); } catch { s = null; }
    const fresh = !s || !(now - s.t <= SESSION_MS);
    if (fresh) s = { id: Math.floor(now / 1000), n: ((s && s.n) || 0) + 1 };
    s.t = now;
    store.setItem('sextant_s', JSON.stringify(s));
    return [s, fresh];
  };

  // push queues one event with the common parameters.
  const push = (name, params, s) => {
    const p = {
      ga_session_id: s.id, ga_session_number: s.n,
      page_location: (page || here()).slice(0, 1000), page_title: d.title.slice(0, 300),
    };
    if (http(referrer)) p.page_referrer = referrer.slice(0, 1000);
    for (const [k, v] of Object.entries(params || {})) {
      if (Object.keys(p).length >= 25) break;
      if (!NAME.test(k) || RESERVED.test(k) || v == null) continue;
      p[k] = typeof v === 'number' ? (isFinite(v) ? v : String(v))
        : typeof v === 'boolean' ? v : String(v).slice(0, MAX[k] || 100);
    }
    queue.push({ name, eventId: rand(12), timestampMicros: Date.now() * 1000, params: p });
  };

  // event records one event unless the visitor opted out.
  const event = (name, params) => {
    if (off()) return;
    if (!NAME.test(name) || RESERVED.test(name)) return console.warn('sextant: invalid event name', name);
    cid = store.getItem('sextant_cid');
    const first = !cid;
    if (first) {
      cid = (crypto.getRandomValues(new Uint32Array(1))[0] >>> 1) + '.' + Math.floor(Date.now() / 1000);
      store.setItem('sextant_cid', cid);
    }
    const [s, fresh] = session();
    if (first) push('first_visit', {}, s);
    if (fresh) push('session_start', {}, s);
    push(name, params, s);
    if (queue.length >= BATCH) flush();
    else if (!timer) timer = setTimeout(flush, DELAY);
  };

  // post sends a batch, retrying network failures and 5xx/429 with the same
  // event ids (the server drops duplicates).
  const post = (url, body, tries) => fetch(url, {
    method: 'POST', body, keepalive: true, credentials: 'omit', headers: { 'Content-Type': 'text/plain' },
  }).then((r) => { if (r.status >= 500 || r.status === 429) throw r; })
    .catch(() => tries < 4 && setTimeout(() => post(url, body, tries + 1), 1000 << tries));

  // flush sends what is queued, by beacon when the page goes away.
  const flush = (beacon) => {
    clearTimeout(timer);
    timer = 0;
    if (!cfg) return;
    if (off()) { queue = []; return; }
    const url = cfg.server + '/v1/collect?key=' + encodeURIComponent(cfg.key);
    while (queue.length) {
      const body = JSON.stringify({ clientId: cid, userId: cfg.userId, events: queue.splice(0, BATCH) });
      if (!(beacon === true && nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: 'text/plain' })))) post(url, body, 0);
    }
  };

  // pageView records a page_view when the URL (without fragment) changed.
  const pageView = () => {
    const url = here();
    if (url === page) return;
    if (page) referrer = page;
    page = url;
    scrolled = false;
    event('page_view', {});
  };

  const hide = () => {
    if (visibleSince) engaged += Date.now() - visibleSince;
    visibleSince = 0;
    if (engaged > 0 && cfg) event('user_engagement', { engagement_time_msec: engaged });
    engaged = 0;
    flush(true);
  };

  const commands = {
    config(key, o = {}) {
      const src = script && script.src;
      cfg = { key, server: (o.server || (src ? new URL(src).origin : '')).replace(/\/+$/, ''), userId: o.user_id };
      if (o.send_page_view !== false) pageView();
    },
    event,
    consent(a, b) {
      const c = typeof a === 'object' ? a : b || {};
      if (c.analytics_storage) denied = c.analytics_storage === 'denied';
      if (denied) queue = [];
    },
    optout() { store.setItem('sextant_optout', '1'); store.removeItem('sextant_cid'); store.removeItem('sextant_s'); queue = []; },
    optin() { store.removeItem('sextant_optout'); },
  };

  const api = function (cmd, ...args) {
    try {
      if (commands[cmd]) commands[cmd](...args);
    } catch (e) {
      console.warn('sextant:', e);
    }
  };
  api.loaded = true;
  const pending = (w.sextant && w.sextant.q) || [];
  w.sextant = api;
  for (const args of pending) api(...args);

  // Single-page apps: page views on History API navigation.
  for (const m of ['pushState', 'replaceState']) {
    const orig = history[m];
    history[m] = function (...a) {
      const r = orig.apply(this, a);
      if (cfg) setTimeout(pageView);
      return r;
    };
  }
  w.addEventListener('popstate', () => cfg && setTimeout(pageView));

  // Outbound link clicks.
  d.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (a && cfg && http(a.href) && a.hostname !== location.hostname) {
      event('click', { link_url: a.href, link_domain: a.hostname, outbound: true });
    }
  }, true);

  // Scroll depth: 90 %, once per page.
  w.addEventListener('scroll', () => {
    const el = d.documentElement;
    if (!scrolled && cfg && w.scrollY + w.innerHeight >= 0.9 * el.scrollHeight) {
      scrolled = true;
      event('scroll', { percent_scrolled: 90 });
    }
  }, { passive: true });

  // Engagement time is visible time; it is sent when the page is hidden.
  d.addEventListener('visibilitychange', () => {
    if (d.visibilityState === 'hidden') hide();
    else visibleSince = Date.now();
  });
  w.addEventListener('pagehide', hide);
  w.addEventListener('pageshow', (e) => { if (e.persisted && d.visibilityState === 'visible') visibleSince = Date.now(); });
})();
