import { createHash } from 'node:crypto';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { dashboardData, DashboardOptionsError, type AlarmsView } from '../core/dashboard-data';
import { badRequest, json } from './http';
import type { Route } from './routes';

/**
 * The operator dashboard: one static page and the admin JSON it polls.
 *
 *   GET /dashboard        (no auth) the page; it holds no data. It asks for the
 *                         admin key, keeps it in this tab's sessionStorage and
 *                         sends it as x-api-key on every request it makes.
 *   GET /admin/dashboard  (admin) `dashboardData` as JSON; ?windowMinutes=1..1440
 *
 * Retry and Cancel on the page call POST /admin/jobs/{id}/retry and /cancel;
 * Retry is offered only where it can work (not while a dependency of the job
 * has not completed).
 * The page is self-contained (no CDN: inline CSS, vanilla JS, SVG charts drawn
 * here) and puts every value from the database into the DOM with textContent.
 * Its CSP allows exactly the inline <style> and <script> below by their SHA-256,
 * and Trusted Types makes any innerHTML with a string throw, so a job's error
 * text can never become markup. All URLs are relative, so it works under an API
 * Gateway stage prefix (/prod/dashboard) as well as locally.
 */

const STYLE = String.raw`
:root {
  color-scheme: light;
  --bg: #f4f5f7; --panel: #fff; --text: #1b2230; --muted: #687182; --line: #e2e5ea;
  --ok: #2e9d5b; --fail: #d64545; --cancel: #9aa3ad; --warn: #b77900; --accent: #2f6fde;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; align-items: center; gap: 14px; padding: 10px 24px; background: #1b2230; color: #fff; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
header .spacer { flex: 1; }
header .meta { color: #b9c1cf; font-size: 13px; }
header label { color: #b9c1cf; font-size: 13px; }
header select, header button { background: #2a3344; color: #fff; border: 1px solid #3b465b; border-radius: 6px; padding: 4px 8px; font: inherit; font-size: 13px; }
main { padding: 18px 24px 40px; max-width: 1480px; margin: 0 auto; }
[hidden] { display: none !important; }
.status { margin: 0 0 14px; padding: 8px 12px; border-radius: 6px; background: #e8f0fd; color: #1d4690; }
.status.error { background: #fdecec; color: #8a1f1f; }
.status.ok { background: #e7f6ed; color: #1d6a3c; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; margin-top: 2px; white-space: nowrap; }
.card .hint { color: var(--muted); font-size: 12px; }
.card.alert { border-color: var(--fail); background: #fdf1f1; }
.card.alert .value { color: var(--fail); }
.card.warn .value { color: var(--warn); }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px 14px; margin-top: 16px; min-width: 0; }
.panel h2 { font-size: 14px; margin: 0 0 8px; display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.panel h2 .sub { font-weight: 400; color: var(--muted); font-size: 12px; }
.legend { display: flex; gap: 12px; font-size: 12px; color: var(--muted); font-weight: 400; margin-left: auto; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.swatch.ok { background: var(--ok); } .swatch.fail { background: var(--fail); } .swatch.cancel { background: var(--cancel); }
.swatch.line { background: var(--fail); height: 3px; vertical-align: 2px; }
.swatch.avg { background: var(--muted); height: 2px; vertical-align: 3px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: #c9ced6; stroke-width: 1; }
svg .tick { fill: var(--muted); font-size: 11px; }
svg .bar-ok { fill: var(--ok); } svg .bar-fail { fill: var(--fail); } svg .bar-cancel { fill: var(--cancel); }
svg .hit { fill: transparent; } svg .hit:hover { fill: rgba(47, 111, 222, .08); }
svg .rate { fill: none; stroke: var(--fail); stroke-width: 2; stroke-linejoin: round; }
svg .rate-area { fill: rgba(214, 69, 69, .10); }
svg .rate-dot { fill: var(--fail); }
svg .avg { stroke: var(--muted); stroke-width: 1; stroke-dasharray: 4 3; }
svg .nodata { fill: var(--muted); font-size: 13px; }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
tbody tr:last-child td { border-bottom: none; }
td.num, th.num { text-align: right; }
td.zero { color: #b4bac4; }
td.bad { color: var(--fail); font-weight: 600; }
tr.empty td { color: var(--muted); font-style: italic; }
.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 11px; color: var(--muted); white-space: nowrap; }
.err { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 4.4em; overflow: hidden; color: #8a1f1f; }
.when, .nowrap { white-space: nowrap; }
button { font: inherit; font-size: 13px; border: 1px solid #c9ced6; background: #fff; color: var(--text); border-radius: 6px; padding: 3px 10px; cursor: pointer; }
button:hover { border-color: var(--accent); color: var(--accent); }
button:disabled { opacity: .5; cursor: default; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { border-color: var(--fail); color: var(--fail); }
.login { max-width: 460px; margin: 64px auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 22px 24px; }
.login h2 { margin: 0 0 6px; font-size: 18px; }
.login p { color: var(--muted); margin: 0 0 14px; }
.login form { display: flex; gap: 8px; }
.login input { flex: 1; font: inherit; padding: 6px 10px; border: 1px solid #c9ced6; border-radius: 6px; }
.login .problem { color: var(--fail); margin-top: 10px; }
.panel.alarms { margin: 0 0 16px; }
details summary { cursor: pointer; margin-top: 4px; }
ol.attempts { margin: 4px 0 0; padding-left: 18px; font-size: 12px; overflow-wrap: anywhere; }
.panel.firing { border-color: var(--fail); background: #fdf6f6; }
.alarm-name { font-weight: 600; color: var(--fail); }
.desc { color: var(--muted); font-size: 12px; max-width: 60ch; }
.kind { color: var(--muted); font-size: 11px; }
td.held { color: var(--warn); font-weight: 600; }
`;

// Plain ES5-style JS inside String.raw: no backticks and no dollar-brace in here.
const SCRIPT = String.raw`
(function () {
  'use strict';
  var STORE_KEY = 'summary-jobs.admin-key';
  var WINDOW_KEY = 'summary-jobs.window-minutes';
  var REFRESH_MS = 5000;
  var SVG_NS = 'http://www.w3.org/2000/svg';
  // Relative to wherever the page is served: /dashboard locally, /prod/dashboard behind API Gateway.
  var base = location.pathname.replace(/\/dashboard\/?$/, '/');
  var numbers = new Intl.NumberFormat('en-US');
  var timer = 0;
  var loading = false;
  var again = false;

  function byId(id) { return document.getElementById(id); }
  function tid(name) { return document.querySelector('[data-testid="' + name + '"]'); }

  // Every value from the server goes in as textContent or as an attribute value, never as markup.
  function el(tag, opts, children) {
    var node = document.createElement(tag);
    opts = opts || {};
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    if (opts.cls) node.className = opts.cls;
    var attrs = opts.attrs || {};
    Object.keys(attrs).forEach(function (k) { if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function getKey() { try { return sessionStorage.getItem(STORE_KEY); } catch (e) { return null; } }
  function setKey(key) { sessionStorage.setItem(STORE_KEY, key); }
  function windowMinutes() {
    var v = Number(sessionStorage.getItem(WINDOW_KEY));
    return [15, 60, 360, 1440].indexOf(v) >= 0 ? v : 60;
  }

  // --- formatting ---
  function num(n) { return numbers.format(n); }
  function pct(r) { return r === null || r === undefined ? '–' : (r * 100).toFixed(1) + '%'; }
  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    var h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + (m % 60) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }
  function clock(iso) {
    var d = new Date(iso);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }
  function ago(iso, nowIso) { return duration((Date.parse(nowIso) - Date.parse(iso)) / 1000) + ' ago'; }
  function windowText(minutes) { return minutes % 60 === 0 ? (minutes / 60) + ' h' : minutes + ' min'; }

  // --- status line ---
  function note(text, kind) {
    var box = tid('status-message');
    box.textContent = text;
    box.className = 'status' + (kind ? ' ' + kind : '');
    box.hidden = !text;
  }

  // --- requests ---
  function request(method, path) {
    return fetch(base + path, {
      method: method,
      headers: { 'x-api-key': getKey() || '', accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
  }
  function problemText(res) {
    return res.json().then(function (p) { return (p && (p.detail || p.title)) || ('HTTP ' + res.status); }, function () { return 'HTTP ' + res.status; });
  }

  // --- sign in / out ---
  function showLogin(message) {
    clearTimeout(timer);
    byId('dashboard').hidden = true;
    byId('login').hidden = false;
    byId('signout').hidden = true;
    byId('controls').hidden = true;
    var problem = tid('login-problem');
    problem.textContent = message || '';
    problem.hidden = !message;
    tid('admin-key-input').focus();
  }
  function forget(message) {
    try { sessionStorage.removeItem(STORE_KEY); } catch (e) { /* ignore */ }
    showLogin(message);
  }
  function authFailed(res) {
    forget('The admin key was not accepted (HTTP ' + res.status + '). Enter it again.');
  }

  // --- refresh loop ---
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }
  function refresh() {
    clearTimeout(timer);
    if (!getKey()) { if (byId('login').hidden) showLogin(); return; }
    if (loading) { again = true; return; }
    if (document.hidden) { schedule(); return; }
    loading = true;
    request('GET', 'admin/dashboard?windowMinutes=' + windowMinutes())
      .then(function (res) {
        if (res.status === 401 || res.status === 403) { authFailed(res); return null; }
        if (!res.ok) return problemText(res).then(function (t) { throw new Error(t); });
        return res.json();
      })
      .then(function (data) {
        if (!data) return;
        byId('login').hidden = true;
        byId('dashboard').hidden = false;
        byId('signout').hidden = false;
        byId('controls').hidden = false;
        render(data);
        tid('stale').hidden = true;
      }, function (err) {
        var stale = tid('stale');
        stale.textContent = 'Refresh failed (' + (err && err.message ? err.message : 'network error') + '); retrying every ' + (REFRESH_MS / 1000) + ' s. The numbers below may be out of date.';
        stale.hidden = false;
      })
      .then(function () {
        loading = false;
        if (!getKey()) return;
        if (again) { again = false; refresh(); } else schedule();
      });
  }

  // --- actions ---
  function jobAction(button, jobId, verb) {
    button.disabled = true;
    request('POST', 'admin/jobs/' + encodeURIComponent(jobId) + '/' + verb)
      .then(function (res) {
        if (res.status === 401 || res.status === 403) { authFailed(res); return; }
        if (res.ok) { note('Job ' + jobId + (verb === 'retry' ? ' is queued again with a fresh set of attempts.' : ' was cancelled.'), 'ok'); return; }
        return problemText(res).then(function (t) { note('Could not ' + verb + ' job ' + jobId + ': ' + t, 'error'); button.disabled = false; });
      }, function () { note('Could not ' + verb + ' job ' + jobId + ': network error', 'error'); button.disabled = false; })
      .then(function () { refresh(); });
  }
  function actionButton(label, testid, jobId, verb, cls) {
    var b = el('button', { text: label, cls: cls, attrs: { type: 'button', 'data-testid': testid, 'data-job-id': jobId } });
    b.addEventListener('click', function () {
      // Cancelling cannot be undone: the first click arms the button, the second one acts.
      if (verb === 'cancel' && b.getAttribute('data-armed') !== 'true') {
        b.setAttribute('data-armed', 'true');
        b.textContent = 'Confirm cancel';
        setTimeout(function () { b.removeAttribute('data-armed'); b.textContent = label; }, 4000);
        return;
      }
      jobAction(b, jobId, verb);
    });
    return b;
  }

  // --- cards ---
  function setCount(name, value) { tid(name).textContent = num(value); }
  function flag(name, cls, on) { tid(name).closest('.card').classList.toggle(cls, on); }

  // --- charts (inline SVG) ---
  var W = 640, H = 190, L = 46, R = 12, T = 12, B = 26;
  function niceMax(v) {
    if (v <= 0) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 4, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function frame(root, series, top, label) {
    var plotH = H - T - B;
    [0, 0.5, 1].forEach(function (f) {
      var y = T + (1 - f) * plotH;
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: f === 0 ? 'axis' : 'grid' }));
      root.appendChild(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, label(top * f)));
    });
    var n = series.length;
    if (n === 0) return;
    var step = (W - L - R) / n;
    [[0, 'start'], [Math.floor((n - 1) / 2), 'middle'], [n - 1, 'end']].forEach(function (t) {
      var x = t[1] === 'start' ? L : t[1] === 'end' ? W - R : L + (t[0] + 0.5) * step;
      root.appendChild(svg('text', { x: x, y: H - 8, 'text-anchor': t[1], class: 'tick' }, clock(series[t[0]].minute)));
    });
  }
  // Long windows: whole groups of minutes per bar, so a bar stays wide enough to see and hover.
  var MAX_BARS = 120;
  function coarse(series) {
    var k = [1, 2, 5, 10, 15, 30, 60].filter(function (m) { return series.length / m <= MAX_BARS; })[0] || 60;
    if (k === 1) return series;
    // Groups aligned to the clock (:00, :15, :30...), so bars do not shift between refreshes.
    var out = [], byKey = {};
    series.forEach(function (g) {
      var key = Math.floor(Date.parse(g.minute) / 60000 / k);
      var p = byKey[key];
      if (!p) {
        p = byKey[key] = { minute: new Date(key * k * 60000).toISOString(), minutes: k, completed: 0, failed: 0, cancelled: 0 };
        out.push(p);
      }
      p.completed += g.completed; p.failed += g.failed; p.cancelled += g.cancelled;
    });
    out.forEach(function (p) { p.failureRate = p.completed + p.failed === 0 ? null : p.failed / (p.completed + p.failed); });
    return out;
  }
  function span(p) { return p.minutes > 1 ? clock(p.minute) + ' +' + p.minutes + ' min' : clock(p.minute); }
  function drawThroughput(root, series) {
    root.replaceChildren();
    var max = 0;
    series.forEach(function (p) { max = Math.max(max, p.completed + p.failed + p.cancelled); });
    var top = niceMax(max);
    frame(root, series, top, function (v) { return v % 1 === 0 ? num(v) : v.toFixed(1); });
    var plotH = H - T - B, step = (W - L - R) / series.length, bw = Math.max(1, step * 0.78);
    series.forEach(function (p, i) {
      var x = L + i * step, y = T + plotH;
      var g = svg('g', { 'data-minute': p.minute });
      [['completed', 'bar-ok'], ['failed', 'bar-fail'], ['cancelled', 'bar-cancel']].forEach(function (s) {
        var v = p[s[0]];
        if (!v) return;
        var h = (v / top) * plotH;
        y -= h;
        g.appendChild(svg('rect', { x: x + (step - bw) / 2, y: y, width: bw, height: h, class: s[1] }));
      });
      var hit = svg('rect', { x: x, y: T, width: step, height: plotH, class: 'hit' });
      hit.appendChild(svg('title', {}, span(p) + ' · ' + p.completed + ' completed, ' + p.failed + ' failed, ' + p.cancelled + ' cancelled'));
      g.appendChild(hit);
      root.appendChild(g);
    });
  }
  function drawFailureRate(root, series, overall) {
    root.replaceChildren();
    frame(root, series, 1, function (v) { return Math.round(v * 100) + '%'; });
    var plotH = H - T - B, step = (W - L - R) / series.length;
    function xy(p, i) { return [L + (i + 0.5) * step, T + (1 - p.failureRate) * plotH]; }
    var runs = [], run = [];
    series.forEach(function (p, i) {
      if (p.failureRate === null) { if (run.length) runs.push(run); run = []; return; }
      run.push(xy(p, i));
    });
    if (run.length) runs.push(run);
    runs.forEach(function (pts) {
      var line = pts.map(function (q) { return q[0].toFixed(1) + ',' + q[1].toFixed(1); }).join(' ');
      var floor = (T + plotH).toFixed(1);
      var area = pts[0][0].toFixed(1) + ',' + floor + ' ' + line + ' ' + pts[pts.length - 1][0].toFixed(1) + ',' + floor;
      root.appendChild(svg('polygon', { points: area, class: 'rate-area' }));
      if (pts.length > 1) root.appendChild(svg('polyline', { points: line, class: 'rate' }));
    });
    series.forEach(function (p, i) {
      if (p.failureRate === null) return;
      var q = xy(p, i);
      var dot = svg('circle', { cx: q[0], cy: q[1], r: 2.5, class: 'rate-dot' });
      dot.appendChild(svg('title', {}, span(p) + ' · ' + pct(p.failureRate) + ' (' + p.failed + ' of ' + (p.failed + p.completed) + ')'));
      root.appendChild(dot);
    });
    if (overall !== null) {
      var y = T + (1 - overall) * plotH;
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'avg' }));
    }
    if (runs.length === 0) {
      root.appendChild(svg('text', { x: (L + W - R) / 2, y: T + plotH / 2, 'text-anchor': 'middle', class: 'nodata' }, 'No completed or failed jobs in this window'));
    }
  }

  // --- tables ---
  function fill(name, rows, columns, emptyText, makeRow) {
    var body = tid(name);
    if (rows.length === 0) {
      body.replaceChildren(el('tr', { cls: 'empty' }, [el('td', { text: emptyText, attrs: { colspan: columns } })]));
      return;
    }
    body.replaceChildren.apply(body, rows.map(makeRow));
  }
  function numCell(col, value, badWhenPositive) {
    return el('td', { text: num(value), cls: 'num' + (value === 0 ? ' zero' : badWhenPositive ? ' bad' : ''), attrs: { 'data-col': col } });
  }
  function clientName(name) { return name === null ? '(unknown client)' : name; }
  // The client's name with the job's id under it, in one cell.
  function jobCell(name, jobId) {
    return el('td', {}, [el('div', { text: clientName(name) }), el('div', { text: jobId, cls: 'id' })]);
  }
  function breakdownRow(testid, label, labelCell, b) {
    return el('tr', { attrs: { 'data-testid': testid, 'data-name': label } }, [
      labelCell,
      numCell('queued', b.queued), numCell('running', b.running), numCell('completed', b.completed),
      numCell('failed', b.failed, true), numCell('cancelled', b.cancelled),
      el('td', { text: pct(b.failed + b.completed === 0 ? null : b.failed / (b.failed + b.completed)), cls: 'num', attrs: { 'data-col': 'failure-rate' } }),
    ]);
  }

  // Every failed attempt of the job, oldest first: what happened before the last error.
  // Histories the operator opened stay open across the 5-second refresh.
  var openHistories = {};
  function attemptHistory(jobId, attempts, nowIso) {
    if (!attempts || attempts.length === 0) return null;
    var list = el('ol', { cls: 'attempts' }, attempts.map(function (a) {
      return el('li', { attrs: { 'data-testid': 'attempt', title: new Date(a.at).toLocaleString() } }, [
        el('span', { text: 'attempt ' + a.attempt + ' · ' + ago(a.at, nowIso) + (a.retryable ? '' : ' · final') + ': ', cls: 'kind' }),
        el('span', { text: a.error }),
      ]);
    }));
    var details = el('details', { attrs: { 'data-testid': 'attempt-history' } }, [
      el('summary', { text: attempts.length === 1 ? '1 failed attempt' : attempts.length + ' failed attempts', cls: 'kind' }),
      list,
    ]);
    details.open = Boolean(openHistories[jobId]);
    details.addEventListener('toggle', function () { if (details.open) openHistories[jobId] = true; else delete openHistories[jobId]; });
    return details;
  }

  function render(d) {
    var s = d.stats;
    setCount('count-queued', s.queued);
    setCount('count-scheduled', s.scheduled);
    setCount('count-waiting', s.waiting);
    setCount('count-running', s.running);
    setCount('count-stuck', s.stuck);
    setCount('count-completed', s.completed);
    setCount('count-failed', s.failed);
    setCount('count-cancelled', s.cancelled);
    tid('failure-rate').textContent = pct(d.failureRate);
    tid('oldest-age').textContent = s.queued > 0 ? duration(s.oldestRunnableAgeSeconds) : '–';
    flag('count-stuck', 'alert', s.stuck > 0);
    flag('count-failed', 'warn', s.failed > 0);
    flag('failure-rate', 'warn', (d.failureRate || 0) >= 0.1);
    flag('oldest-age', 'warn', s.queued > 0 && s.oldestRunnableAgeSeconds >= 300);
    document.querySelectorAll('.window-label').forEach(function (n) { n.textContent = 'last ' + windowText(d.windowMinutes); });

    var series = coarse(d.series);
    var perBar = series.length ? (series[0].minutes || 1) : 1;
    document.querySelectorAll('.bucket-label').forEach(function (n) { n.textContent = perBar > 1 ? 'per ' + perBar + ' minutes' : 'per minute'; });
    drawThroughput(tid('chart-throughput'), series);
    drawFailureRate(tid('chart-failure-rate'), series, d.failureRate);

    fill('stuck-rows', d.stuckJobs, 4, 'No stuck jobs: every running job holds a live lease.', function (j) {
      return el('tr', { attrs: { 'data-testid': 'stuck-row', 'data-job-id': j.id } }, [
        jobCell(j.clientName, j.id),
        el('td', { text: j.jobType }),
        el('td', { text: j.leaseOwner === null ? '–' : j.leaseOwner }),
        el('td', { text: duration(j.expiredForSeconds), cls: 'num bad nowrap', attrs: { 'data-col': 'expired-for' } }),
      ]);
    });
    fill('failure-rows', d.latestFailures, 5, 'No jobs failed in this window.', function (f) {
      return el('tr', { attrs: { 'data-testid': 'failure-row', 'data-job-id': f.id } }, [
        el('td', { cls: 'when', attrs: { title: new Date(f.finishedAt).toLocaleString() } }, [
          el('div', { text: ago(f.finishedAt, d.generatedAt) }), el('div', { text: f.id, cls: 'id' }),
        ]),
        el('td', {}, [el('div', { text: clientName(f.clientName) }), el('div', { text: f.jobType, cls: 'id' })]),
        el('td', { text: f.attempts + ' / ' + f.maxAttempts, cls: 'num' }),
        el('td', {}, [
          el('div', { text: f.lastError === null ? '(no error recorded)' : f.lastError, cls: 'err', attrs: { 'data-testid': 'failure-error', title: f.lastError } }),
          attemptHistory(f.id, f.attemptErrors, d.generatedAt),
        ]),
        el('td', {}, [f.retryable
          ? actionButton('Retry', 'retry-button', f.id, 'retry', 'primary')
          // Retrying it now would fail it again at once: its dependency has not completed.
          : el('div', { text: 'waits on ' + f.retryBlockedBy, cls: 'id', attrs: { 'data-testid': 'retry-blocked', title: 'Retry is offered once job ' + f.retryBlockedBy + ' has completed (retry that one first).' } })]),
      ]);
    });
    fill('next-rows', d.nextJobs, 5, 'Nothing is waiting to run.', function (n) {
      return el('tr', { attrs: { 'data-testid': 'next-row', 'data-job-id': n.id } }, [
        jobCell(n.clientName, n.id),
        el('td', { text: n.jobType }),
        el('td', { text: String(n.priority), cls: 'num' }),
        el('td', { text: duration(n.waitingSeconds), cls: 'num nowrap' }),
        el('td', {}, [actionButton('Cancel', 'cancel-button', n.id, 'cancel', 'danger')]),
      ]);
    });
    fill('client-rows', d.clients, 7, 'No jobs in the queue or in this window.', function (c) {
      return breakdownRow('client-row', c.clientName === null ? c.clientId : c.clientName, el('td', { text: clientName(c.clientName), attrs: { title: c.clientId } }), c);
    });
    fill('type-rows', d.jobTypes, 7, 'No jobs in the queue or in this window.', function (t) {
      return breakdownRow('type-row', t.jobType, el('td', { text: t.jobType }), t);
    });

    var held = d.rateLimits.reduce(function (n, l) { return n + l.held; }, 0);
    setCount('count-held', held);
    flag('count-held', 'warn', held > 0);
    fill('limit-rows', d.rateLimits, 5, 'No rate limits are set.', function (l) {
      var name = l.scope === 'client' ? (l.clientName === null ? l.key : l.clientName) : l.key;
      return el('tr', { attrs: { 'data-testid': 'limit-row', 'data-scope': l.scope, 'data-key': l.key } }, [
        el('td', {}, [el('div', { text: name }), el('div', { text: l.scope === 'client' ? 'client' : 'job type', cls: 'kind' })]),
        el('td', { text: l.maxPerInterval === null ? '–' : num(l.startedInInterval) + ' / ' + num(l.maxPerInterval) + ' per ' + duration(l.intervalSeconds), cls: 'num nowrap', attrs: { 'data-col': 'interval' } }),
        el('td', { text: l.maxRunning === null ? num(l.running) : num(l.running) + ' / ' + num(l.maxRunning), cls: 'num', attrs: { 'data-col': 'running' } }),
        numCell('runnable', l.runnable),
        el('td', { text: num(l.held), cls: 'num' + (l.held > 0 ? ' held' : ' zero'), attrs: { 'data-col': 'held' } }),
      ]);
    });
    renderAlarms(d.alarms, d.generatedAt);

    tid('last-updated').textContent = 'Updated ' + new Date(d.generatedAt).toLocaleTimeString();
  }

  function renderAlarms(a, nowIso) {
    var panel = tid('alarms-panel');
    var local = a.source === 'local';
    byId('alarms-local').hidden = !local;
    byId('alarms-cloud').hidden = local;
    if (!local) {
      panel.classList.remove('firing');
      // Only a secure web link becomes the href (never a javascript: URL).
      if (new URL(a.consoleUrl).protocol === 'https:') tid('alarms-link').setAttribute('href', a.consoleUrl);
      return;
    }
    panel.classList.toggle('firing', a.firing.length > 0);
    fill('alarm-rows', a.firing, 3, 'No alarm is firing.', function (f) {
      return el('tr', { attrs: { 'data-testid': 'alarm-row', 'data-alarm': f.alarm } }, [
        el('td', {}, [el('div', { text: f.alarm, cls: 'alarm-name' }), el('div', { text: 'since ' + ago(f.since, nowIso), cls: 'kind', attrs: { title: new Date(f.since).toLocaleString() } })]),
        el('td', { text: f.reason }),
        el('td', { text: f.description, cls: 'desc' }),
      ]);
    });
  }

  // --- wiring ---
  tid('login-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = tid('admin-key-input');
    var key = input.value.trim();
    if (!key) return;
    setKey(key);
    input.value = '';
    note('');
    refresh();
  });
  byId('signout').addEventListener('click', function () { note(''); forget(); });
  var select = tid('window-select');
  select.value = String(windowMinutes());
  select.addEventListener('change', function () {
    sessionStorage.setItem(WINDOW_KEY, select.value);
    refresh();
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden && getKey()) refresh(); });
  refresh();
})();
`;

function card(testid: string, label: string, hint: string): string {
  return `<div class="card"><div class="label">${label}</div><div class="value" data-testid="${testid}">–</div><div class="hint">${hint}</div></div>`;
}

const WINDOW = '<span class="window-label">in window</span>';

const BODY = `
<header>
  <h1>summary-jobs · queue</h1>
  <span class="meta" data-testid="last-updated"></span>
  <span class="spacer"></span>
  <span id="controls" hidden>
    <label for="window">Window</label>
    <select id="window" data-testid="window-select">
      <option value="15">15 min</option><option value="60">1 hour</option><option value="360">6 hours</option><option value="1440">24 hours</option>
    </select>
  </span>
  <button type="button" id="signout" data-testid="sign-out" hidden>Forget key</button>
</header>
<main>
  <noscript><p class="status error">The dashboard needs JavaScript.</p></noscript>
  <section id="login" class="login" hidden>
    <h2>Admin key</h2>
    <p>The dashboard reads the admin API. The key stays in this browser tab (sessionStorage) and is sent only as the x-api-key header to this API.</p>
    <form data-testid="login-form" autocomplete="off">
      <input type="password" data-testid="admin-key-input" aria-label="Admin key" placeholder="admin key" autocomplete="off" spellcheck="false">
      <button type="submit" class="primary" data-testid="admin-key-submit">Open dashboard</button>
    </form>
    <div class="problem" data-testid="login-problem" hidden></div>
  </section>
  <div id="dashboard" hidden>
    <div class="status" data-testid="status-message" role="status" aria-live="polite" hidden></div>
    <div class="status error" data-testid="stale" role="alert" hidden></div>
    <section class="panel alarms" data-testid="alarms-panel">
      <h2>Firing alarms <span class="sub">the stack's alarm rules; each one pages on-call</span></h2>
      <div id="alarms-local" class="table-wrap"><table>
        <thead><tr><th>Alarm</th><th>Why</th><th>What it means, what to do</th></tr></thead>
        <tbody data-testid="alarm-rows"></tbody>
      </table></div>
      <p id="alarms-cloud" hidden>CloudWatch keeps the alarm states: <a data-testid="alarms-link" target="_blank" rel="noopener noreferrer">the alarms in ALARM, in the CloudWatch console</a>.</p>
    </section>
    <div class="cards">
      ${card('count-queued', 'Queued', 'runnable now')}
      ${card('count-scheduled', 'Scheduled', 'run-at in the future')}
      ${card('count-waiting', 'Waiting', 'on dependencies')}
      ${card('count-running', 'Running', 'leases held')}
      ${card('count-stuck', 'Stuck', 'lease expired')}
      ${card('oldest-age', 'Oldest queued', 'runnable job age')}
      ${card('count-held', 'Held', 'by a rate limit')}
      ${card('count-completed', 'Completed', WINDOW)}
      ${card('count-failed', 'Failed', WINDOW)}
      ${card('count-cancelled', 'Cancelled', WINDOW)}
      ${card('failure-rate', 'Failure rate', WINDOW)}
    </div>
    <div class="grid2">
      <section class="panel">
        <h2>Throughput <span class="sub">jobs finished <span class="bucket-label">per minute</span>, <span class="window-label"></span></span>
          <span class="legend"><span><span class="swatch ok"></span>completed</span><span><span class="swatch fail"></span>failed</span><span><span class="swatch cancel"></span>cancelled</span></span>
        </h2>
        <svg class="chart" viewBox="0 0 640 190" role="img" aria-label="Jobs finished per minute" data-testid="chart-throughput"></svg>
      </section>
      <section class="panel">
        <h2>Failure rate <span class="sub">failed ÷ (completed + failed) <span class="bucket-label">per minute</span></span>
          <span class="legend"><span><span class="swatch line"></span><span class="bucket-label">per minute</span></span><span><span class="swatch avg"></span>window average</span></span>
        </h2>
        <svg class="chart" viewBox="0 0 640 190" role="img" aria-label="Failure rate per minute" data-testid="chart-failure-rate"></svg>
      </section>
    </div>
    <section class="panel">
      <h2>Latest failures <span class="sub">failed for good, newest first, <span class="window-label"></span>; Retry queues the job again with a fresh set of attempts</span></h2>
      <div class="table-wrap"><table>
        <thead><tr><th>Failed</th><th>Client / type</th><th class="num">Attempts</th><th>Error</th><th></th></tr></thead>
        <tbody data-testid="failure-rows"></tbody>
      </table></div>
    </section>
    <div class="grid2">
      <section class="panel">
        <h2>Stuck jobs <span class="sub">running with an expired lease; the processor's reaper re-queues them</span></h2>
        <div class="table-wrap"><table>
          <thead><tr><th>Client / job</th><th>Type</th><th>Lease owner</th><th class="num">Expired for</th></tr></thead>
          <tbody data-testid="stuck-rows"></tbody>
        </table></div>
      </section>
      <section class="panel">
        <h2>Next in line <span class="sub">runnable jobs in claim order (priority, then age)</span></h2>
        <div class="table-wrap"><table>
          <thead><tr><th>Client / job</th><th>Type</th><th class="num">Priority</th><th class="num">Waiting</th><th></th></tr></thead>
          <tbody data-testid="next-rows"></tbody>
        </table></div>
      </section>
    </div>
    <section class="panel">
      <h2>Rate limits <span class="sub">jobs held by a limit wait for it, not for the processor; they do not page</span></h2>
      <div class="table-wrap"><table>
        <thead><tr><th>Limit</th><th class="num">Started in interval</th><th class="num">Running</th><th class="num">Runnable</th><th class="num">Held</th></tr></thead>
        <tbody data-testid="limit-rows"></tbody>
      </table></div>
    </section>
    <div class="grid2">
      <section class="panel">
        <h2>By client <span class="sub">queued and running now; finished <span class="window-label"></span></span></h2>
        <div class="table-wrap"><table>
          <thead><tr><th>Client</th><th class="num">Queued</th><th class="num">Running</th><th class="num">Completed</th><th class="num">Failed</th><th class="num">Cancelled</th><th class="num">Failure rate</th></tr></thead>
          <tbody data-testid="client-rows"></tbody>
        </table></div>
      </section>
      <section class="panel">
        <h2>By job type <span class="sub">queued and running now; finished <span class="window-label"></span></span></h2>
        <div class="table-wrap"><table>
          <thead><tr><th>Type</th><th class="num">Queued</th><th class="num">Running</th><th class="num">Completed</th><th class="num">Failed</th><th class="num">Cancelled</th><th class="num">Failure rate</th></tr></thead>
          <tbody data-testid="type-rows"></tbody>
        </table></div>
      </section>
    </div>
  </div>
</main>`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>summary-jobs · queue dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * Only the two inline blocks above may run or apply; the page may talk to its
 * own origin only; Trusted Types turns any string-to-HTML sink into an error.
 */
const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

function page(): APIGatewayProxyResult {
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': DASHBOARD_CSP,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    },
    body: PAGE,
  };
}

function windowOf(query: Record<string, string | undefined> | null): number | undefined {
  const raw = query?.windowMinutes;
  if (raw === undefined) return undefined;
  if (!/^\d{1,4}$/.test(raw)) throw badRequest('windowMinutes must be a whole number of minutes from 1 to 1440');
  return Number(raw);
}

export interface DashboardRoutesOptions {
  /** The alarms' states; by default a link to the CloudWatch console (AWS). Local mode passes its evaluator's. */
  alarms?: () => AlarmsView;
}

export function createDashboardRoutes(opts: DashboardRoutesOptions = {}): Route[] {
  return [
    {
      method: 'GET',
      path: '/dashboard',
      auth: 'none',
      handle: async () => page(),
    },
    {
      method: 'GET',
      path: '/admin/dashboard',
      auth: 'admin',
      handle: async (ctx) => {
        try {
          return json(200, await dashboardData(ctx.pool, { windowMinutes: windowOf(ctx.event.queryStringParameters), alarms: opts.alarms?.() }));
        } catch (err) {
          if (err instanceof DashboardOptionsError) throw badRequest(err.message);
          throw err;
        }
      },
    },
  ];
}

/** The dashboard as the Lambda serves it: alarm states are CloudWatch's. */
export const dashboardRoutes: Route[] = createDashboardRoutes();
