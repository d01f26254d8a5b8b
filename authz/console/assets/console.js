// Warden console: signs in with an admin token kept in this tab's session
// storage and sent as an Authorization header (never in a URL or cookie),
// loads each page's data from /console/api/, and reads the live view's
// server-sent events with fetch (EventSource cannot send headers).
(function () {
  'use strict';
  var KEY = 'warden-admin-token';
  var page = document.body.getAttribute('data-page');
  var $ = function (s) { return document.querySelector(s); };

  function headers(extra) {
    var h = {};
    var t = sessionStorage.getItem(KEY);
    if (t) { h['Authorization'] = 'Bearer ' + t; }
    for (var k in extra || {}) { h[k] = extra[k]; }
    return h;
  }
  function call(path, opts) {
    opts = opts || {};
    return fetch(path, {
      method: opts.method || 'GET', body: opts.body, signal: opts.signal,
      headers: headers(opts.headers), credentials: 'same-origin', cache: 'no-store', redirect: 'error'
    });
  }
  function say(msg, bad) {
    var s = $('#status');
    s.textContent = msg || '';
    s.className = 'status' + (bad ? ' deny' : '');
  }
  function signedOut(msg) {
    $('#app').hidden = true;
    $('#signout').hidden = true;
    $('#who').textContent = '';
    var v = $('#view'); if (v) { v.textContent = ''; }
    var rows = $('#rows'); if (rows) { rows.textContent = ''; }
    $('#signin').hidden = false;
    say(msg || '', !!msg);
    $('#token').focus();
  }
  function signedIn(who) {
    $('#signin').hidden = true;
    $('#app').hidden = false;
    $('#signout').hidden = false;
    $('#who').textContent = 'signed in as ' + who;
    say('');
    start();
  }
  function whoami() {
    return call('/console/api/whoami').then(function (r) {
      if (r.ok) { return r.text().then(signedIn); }
      if (sessionStorage.getItem(KEY)) { sessionStorage.removeItem(KEY); }
      return r.text().then(function (t) { signedOut(r.status === 401 ? '' : t); });
    }, function () { signedOut('the console cannot be reached'); });
  }
  function failed(r) {
    return r.text().then(function (t) {
      if (r.status === 401) { sessionStorage.removeItem(KEY); signedOut('Signed out: ' + t); return; }
      say(t.trim() || ('HTTP ' + r.status), true);
    });
  }
  function load(path, opts) {
    return call(path, opts).then(function (r) {
      if (r.status === 401 || (!r.ok && r.status !== 400 && r.status !== 404)) { return failed(r); }
      return r.text().then(function (html) {
        if (!r.ok && r.status === 400 && r.headers.get('Content-Type').indexOf('text/html') !== 0) { say(html.trim(), true); return; }
        say('');
        // The fragment is rendered by html/template: every value escaped.
        $('#view').innerHTML = html;
      });
    }, function (e) { say(String(e), true); });
  }
  function params(form) {
    var p = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (v !== '') { p.set(k, v); } });
    return p;
  }
  function fill(form, p) {
    p.forEach(function (v, k) { var el = form.elements.namedItem(k); if (el) { el.value = v; } });
  }

  // Live decisions.
  var stream = null, paused = false, shown = 0, ids = new Set();
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }
  function addRow(d) {
    if (ids.has(d.decision_id)) { return; }
    ids.add(d.decision_id);
    var tr = document.createElement('tr');
    cell(tr, (d.time || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
    cell(tr, d.decision, d.decision === 'allow' ? 'allow' : 'deny');
    cell(tr, String(d.status));
    cell(tr, d.reason);
    cell(tr, d.principal || '');
    cell(tr, d.action || '');
    cell(tr, (d.method || '') + ' ' + (d.path || ''));
    cell(tr, d.node || '');
    var a = document.createElement('a');
    a.href = '/console/explain?id=' + encodeURIComponent(d.decision_id);
    a.textContent = d.decision_id;
    cell(tr, '').appendChild(a);
    var rows = $('#rows');
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > 200) { rows.removeChild(rows.lastChild); }
    shown++;
    $('#shown').textContent = String(Math.min(shown, 200));
  }
  function counts(c) {
    $('#counts-window').textContent = c.window;
    var ul = $('#counts');
    ul.textContent = '';
    var keys = Object.keys(c.reasons).sort();
    if (keys.length === 0) { var e = document.createElement('li'); e.textContent = 'no decisions'; ul.appendChild(e); }
    keys.forEach(function (k) {
      var li = document.createElement('li');
      li.textContent = k + ': ' + c.reasons[k];
      li.className = k === 'policy_allow' ? 'allow' : 'deny';
      ul.appendChild(li);
    });
  }
  function handle(name, data) {
    var v; try { v = JSON.parse(data); } catch (e) { return; }
    if (name === 'decision') { addRow(v); }
    else if (name === 'counts') { counts(v); }
    else if (name === 'error' || name === 'dropped') { say(v, true); }
  }
  function connect() {
    if (stream) { stream.abort(); }
    var ctl = new AbortController();
    stream = ctl;
    var p = params($('#controls'));
    var here = new URLSearchParams(location.search);
    if (here.get('since')) { p.set('since', here.get('since')); }
    call('/console/api/live?' + p.toString(), { signal: ctl.signal }).then(function (r) {
      if (!r.ok) { return failed(r); }
      say('live');
      var reader = r.body.getReader(), dec = new TextDecoder(), buf = '';
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) { if (stream === ctl && !paused) { setTimeout(connect, 1000); } return; }
          buf += dec.decode(x.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            var ev = buf.slice(0, i); buf = buf.slice(i + 2);
            var name = 'message', data = '';
            ev.split('\n').forEach(function (l) {
              if (l.indexOf('event: ') === 0) { name = l.slice(7); }
              else if (l.indexOf('data: ') === 0) { data += l.slice(6); }
            });
            handle(name, data);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) { if (e.name !== 'AbortError') { say(String(e), true); } });
  }
  function startLive() {
    var form = $('#controls');
    fill(form, new URLSearchParams(location.search));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      ids.clear(); shown = 0; $('#rows').textContent = ''; $('#shown').textContent = '0';
      var p = params(form);
      history.replaceState(null, '', p.toString() ? '?' + p.toString() : location.pathname);
      if (!paused) { connect(); }
    });
    $('#pause').addEventListener('click', function () {
      paused = !paused;
      this.textContent = paused ? 'Resume' : 'Pause';
      this.setAttribute('aria-pressed', paused ? 'true' : 'false');
      $('#held').textContent = paused ? ' (paused)' : '';
      if (paused) { if (stream) { stream.abort(); stream = null; } say('paused'); } else { connect(); }
    });
    connect();
  }

  var started = false;
  function start() {
    if (started) { return; }
    started = true;
    if (page === 'live') { startLive(); return; }
    var form = $('#controls');
    var here = new URLSearchParams(location.search);
    if (form) {
      fill(form, here);
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var p = params(form);
        history.replaceState(null, '', p.toString() ? '?' + p.toString() : location.pathname);
        load('/console/api/' + page + '?' + p.toString());
      });
    }
    if (page !== 'explain' || here.get('id')) { load('/console/api/' + page + '?' + here.toString()); }
  }

  document.addEventListener('submit', function (e) {
    var path;
    if (e.target.id === 'revoke-form') { path = '/console/api/revoke'; }
    else if (e.target.classList.contains('unrevoke-form')) { path = '/console/api/unrevoke'; }
    else { return; }
    e.preventDefault();
    var body = new URLSearchParams(new FormData(e.target));
    load(path, {
      method: 'POST', body: body.toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Warden-Console': '1' }
    });
  });
  $('#signin-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var t = $('#token');
    sessionStorage.setItem(KEY, t.value.trim());
    t.value = '';
    whoami().then(function () { if ($('#app').hidden) { say('That token is not in admin.token_file.', true); } });
  });
  $('#signout').addEventListener('click', function () {
    sessionStorage.removeItem(KEY);
    if (stream) { stream.abort(); }
    location.reload();
  });
  whoami();
})();
