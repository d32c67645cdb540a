// A gtag.js-like sender written for TestBrowserGtag (no Google script is
// fetched): it sends what Google's tag sends to a server_container_url,
// the GA4 protocol v2 — shared parameters in the query string of a POST to
// /g/collect, one hit per line of its body — by navigator.sendBeacon, as
// the tag does.
(function () {
  'use strict';
  const cfg = window.gtagTest; // {server, tid}
  let cid = localStorage.getItem('_ga_test_cid');
  const firstVisit = !cid;
  if (!cid) {
    cid = Math.floor(Math.random() * 1e9) + '.' + Math.floor(Date.now() / 1000);
    localStorage.setItem('_ga_test_cid', cid);
  }
  const sid = String(Math.floor(Date.now() / 1000));
  const pageLoad = String(Math.floor(Math.random() * 1e9));
  let seq = 0;
  const shared = () => new URLSearchParams({
    v: '2', tid: cfg.tid, cid, sid, sct: '1', seg: '1', _p: pageLoad,
    dl: location.href, dr: document.referrer, dt: document.title,
    ul: navigator.language.toLowerCase(), sr: screen.width + 'x' + screen.height,
  });
  const hit = (params) => new URLSearchParams({ ...params, _s: String(++seq) }).toString();
  // The page view (with the first visit and session start flags), then a
  // scroll and an engagement hit batched in one request's body.
  const first = shared();
  first.set('en', 'page_view');
  first.set('_s', String(++seq));
  if (firstVisit) first.set('_fv', '1');
  first.set('_ss', '1');
  const sent = [navigator.sendBeacon(cfg.server + '/g/collect?' + first.toString())];
  const body = [hit({ en: 'scroll', 'epn.percent_scrolled': '90' }), hit({ en: 'user_engagement', _et: '4200' })].join('\n');
  sent.push(navigator.sendBeacon(cfg.server + '/g/collect?' + shared().toString(), body));
  document.body.dataset.sent = sent.every(Boolean) ? 'yes' : 'no';
})();
