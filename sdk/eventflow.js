/*! EventFlow browser SDK 1.0.0 | Apache-2.0 | no dependencies
 * Served at /sdk/eventflow.js; README.md "Browser SDK" has the whole story.
 *
 *   <script src="https://stats.example.com/sdk/eventflow.js"></script>
 *   <script>EventFlow.init({endpoint: "https://stats.example.com",
 *     clientId: "c-1", campaignId: "cmp-9"});</script>
 *
 * EventFlow.init({endpoint, clientId?, campaignId?, webinarId?, viewerId?,
 *   ingestKey?, respectDnt?, allowAutomation?}) -> whether tracking is on;
 *   ingestKey is one key, or {campaign, webinar} for signed ingest.
 *   Sends a visit when clientId and campaignId are set, and presence pings
 *   (every 60 s while visible, a leave beacon on pagehide) when webinarId
 *   and viewerId are. Nothing is sent when navigator.webdriver is true
 *   unless allowAutomation, nor with respectDnt under Do Not Track.
 * EventFlow.visit(), EventFlow.conversion({entryId, campaignId?, webinarId?,
 *   viewerId?, utm?}) -> Promise of true once accepted; never rejects.
 * EventFlow.sessionId(), EventFlow.firstTouch(), EventFlow.version.
 * The session (localStorage, else memory) renews after 30 idle minutes; the
 * first landing's utm_* and cid are kept 30 days.
 */
(function (w) {
  "use strict";
  var MIN = 6e4, IDLE = 30 * MIN, KEEP = 43200 * MIN, P = "eventflow:",
    ID = /^[A-Za-z0-9._:-]{1,128}$/, UTM = ["source", "medium", "campaign", "term", "content"],
    nav = navigator, doc = document, mem = {}, cfg = null, timer = 0, last = 0, bound = 0;

  function now() { return Date.now(); }
  function load(k) {
    var v;
    try { v = localStorage.getItem(P + k); } catch (e) {}
    try { return v ? JSON.parse(v) : mem[k]; } catch (e) { return null; }
  }
  function save(k, v) {
    mem[k] = v;
    try { localStorage.setItem(P + k, JSON.stringify(v)); } catch (e) {}
  }
  function rid() {
    var a = crypto.getRandomValues(new Uint8Array(16)), s = "", i;
    for (i = 0; i < 16; i++) s += (a[i] + 256).toString(16).slice(1);
    return s;
  }
  function id(v) { return v && ID.test(v) ? v : undefined; }
  function key(kind) {
    var k = cfg.ingestKey;
    return k && typeof k == "object" ? k[kind] : k;
  }

  // Renewed after IDLE without activity; every call is activity.
  function session() {
    var s = load("session"), t = now();
    if (!s || !s.id || !(t - s.at <= IDLE)) s = { id: rid() };
    s.at = t;
    save("session", s);
    return s.id;
  }

  // The first landing URL with a UTM or cid, for KEEP.
  function touch() {
    var q = new URLSearchParams(location.search), f = load("touch"), t = now(), u = {}, n = 0,
      c = (q.get("cid") || "").trim().slice(0, 256);
    UTM.forEach(function (k) {
      var v = (q.get("utm_" + k) || "").trim().slice(0, 256);
      if (v) { u[k] = v; n++; }
    });
    if (f && !(t - f.at <= KEEP)) {
      f = null;
      save("touch", null);
    }
    if (!f && (n || c)) save("touch", f = { at: t, utm: n ? u : undefined, cid: c || undefined });
    return f || {};
  }

  // text/plain needs no CORS preflight; the service reads JSON anyway.
  function post(path, body, tries, kind, done) {
    var n = 0, url = cfg.endpoint + path, h = { "Content-Type": "text/plain;charset=UTF-8" }, k = key(kind);
    if (k) h["X-EventFlow-Key"] = k;
    body.id = rid();
    body = JSON.stringify(body);
    function go() {
      try {
        fetch(url, { method: "POST", body: body, headers: h, keepalive: true }).then(function (r) {
          var s = r.status;
          if (s < 300) return done(true);
          if (s == 429 || s > 499) return again(r.headers.get("Retry-After"));
          done(false);
        }, function () { again(); });
      } catch (e) {
        done(false);
      }
    }
    // Backoff 1, 2, 4, 8, 16 s (less up to half), or Retry-After.
    function again(after) {
      if (++n >= tries) return done(false);
      setTimeout(go, +after > 0 ? Math.min(after * 1e3, 3e5) : (1e3 << (n - 1)) * (1 - Math.random() / 2));
    }
    go();
  }
  function send(path, body, tries, kind) {
    return new Promise(function (done) {
      try { post(path, body, tries, kind, done); } catch (e) { done(false); }
    });
  }

  function record(kind, c, b, o) {
    if (!c || !cfg.clientId) return;
    var f = touch();
    b.client_id = cfg.clientId;
    b.session_id = session();
    b.utm = o.utm || f.utm;
    b.cid = f.cid;
    b.link_id = id(f.cid);
    return send("/api/public/campaigns/" + encodeURIComponent(c) + "/" + kind, b, 6, "campaign");
  }
  function safe(f) {
    return function (o) {
      try {
        var p = cfg && f(o || {});
        if (p) return p;
      } catch (e) {}
      return Promise.resolve(false);
    };
  }

  function presence() { return "/api/webinars/" + encodeURIComponent(cfg.webinarId) + "/presence/"; }
  // Once, not twice, for pageshow + visibilitychange.
  function ping() {
    clearTimeout(timer);
    if (!cfg || !cfg.viewerId || !cfg.webinarId || doc.visibilityState == "hidden") return;
    session();
    if (now() - last > 999) send(presence() + "ping", { viewer_id: cfg.viewerId }, 2, "webinar");
    last = now();
    timer = setTimeout(ping, MIN);
  }
  function leave() {
    clearTimeout(timer);
    last = 0;
    if (!cfg || !cfg.viewerId || !cfg.webinarId) return;
    var k = key("webinar"), url = cfg.endpoint + presence() + "leave" + (k ? "?key=" + encodeURIComponent(k) : ""),
      body = JSON.stringify({ id: rid(), viewer_id: cfg.viewerId });
    try {
      if (nav.sendBeacon(url, body)) return;
    } catch (e) {}
    try { fetch(url, { method: "POST", body: body, keepalive: true }).catch(function () {}); } catch (e) {}
  }

  var api = {
    version: "1.0.0",
    init: function (o) {
      try {
        clearTimeout(timer);
        cfg = null;
        o = o || {};
        if (!o.endpoint || (nav.webdriver && !o.allowAutomation) ||
          (o.respectDnt && (nav.doNotTrack == "1" || w.doNotTrack == "1"))) return false;
        cfg = {};
        for (var k in o) cfg[k] = o[k];
        cfg.endpoint = String(o.endpoint).replace(/\/+$/, "");
        touch();
        session();
        if (!bound) {
          bound = 1;
          doc.addEventListener("visibilitychange", ping);
          w.addEventListener("pagehide", leave);
          w.addEventListener("pageshow", function (e) { if (e.persisted) ping(); });
        }
        if (cfg.campaignId && cfg.clientId) api.visit();
        ping();
        return true;
      } catch (e) {
        return false;
      }
    },
    visit: safe(function () {
      return record("visit", cfg.campaignId, {
        webinar_id: cfg.webinarId,
        path: location.pathname,
        referrer: doc.referrer || undefined,
        user_agent: nav.userAgent
      }, {});
    }),
    conversion: safe(function (o) {
      return o.entryId && record("conversion", o.campaignId || cfg.campaignId, {
        entry_id: o.entryId,
        viewer_id: o.viewerId || cfg.viewerId,
        webinar_id: o.webinarId || cfg.webinarId
      }, o);
    }),
    sessionId: function () { return cfg ? session() : null; },
    firstTouch: function () { return cfg ? touch() : null; }
  };
  w.EventFlow = api;
})(window);
