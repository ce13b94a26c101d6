/**
 * The live dashboard: one self-contained page (inline CSS and script, nothing fetched from elsewhere,
 * so it works on a ship with no internet). It listens to `/api/events`, which sends the gateway's
 * numbers once a second and the containers whose latest reading changed. Values from devices are
 * put in the page as text only, never as markup.
 */
export const DASHBOARD_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reefer-edge dashboard</title>
<style>
  :root { --bg: #f4f6f8; --card: #fff; --ink: #1d2733; --muted: #5d6b7a; --line: #dde3ea;
          --ok: #1a7f45; --warn: #b26a00; --bad: #c62828; --idle: #6b7785; --alarm-bg: #fdecea; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
  header { display: flex; align-items: center; gap: 16px; padding: 12px 20px; background: #13202e; color: #fff; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; font-weight: 600; }
  header .gw { color: #a9b8c8; }
  .badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 600; font-size: 13px; color: #fff; background: var(--idle); }
  .badge.up { background: var(--ok); } .badge.down { background: var(--bad); } .badge.connecting { background: var(--warn); }
  header .spacer { flex: 1; }
  header .live { font-size: 12px; color: #a9b8c8; }
  header .live.stale { color: #ffb4a9; }
  main { padding: 16px 20px 32px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; margin-bottom: 16px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .card .sub { color: var(--muted); font-size: 12px; }
  .card.alert .value { color: var(--bad); }
  .toolbar { display: flex; gap: 14px; align-items: center; margin: 4px 0 8px; flex-wrap: wrap; }
  .toolbar h2 { font-size: 16px; margin: 0 8px 0 0; }
  .toolbar input[type=search] { padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 220px; }
  .toolbar .count { color: var(--muted); }
  table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { background: #eef2f6; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.alarm td { background: var(--alarm-bg); }
  td.temp.excursion { color: var(--bad); font-weight: 600; }
  .chip { display: inline-block; padding: 0 8px; margin-right: 4px; border-radius: 999px; background: var(--bad); color: #fff; font-size: 12px; }
  .chip.maintenance { background: var(--warn); }
  .empty { color: var(--muted); padding: 24px; text-align: center; background: var(--card); border: 1px dashed var(--line); border-radius: 8px; }
</style>
</head>
<body>
<header>
  <h1>reefer-edge</h1><span class="gw" id="gateway-id"></span>
  <span>uplink <span class="badge" id="uplink-state">…</span></span>
  <span class="spacer"></span>
  <span class="live stale" id="live">connecting…</span>
</header>
<main>
  <section class="cards">
    <div class="card"><div class="label">Readings in</div><div class="value" id="rate-in">–</div><div class="sub">per second</div></div>
    <div class="card"><div class="label">Readings out</div><div class="value" id="rate-out">–</div><div class="sub">per second to Kafka</div></div>
    <div class="card" id="outbox-card"><div class="label">Outbox</div><div class="value" id="outbox-count">–</div><div class="sub" id="outbox-sub"></div></div>
    <div class="card" id="oldest-card"><div class="label">Oldest waiting</div><div class="value" id="oldest-age">–</div><div class="sub">since received</div></div>
    <div class="card"><div class="label">Devices online</div><div class="value" id="devices-online">–</div><div class="sub" id="devices-sub"></div></div>
    <div class="card" id="loss-card"><div class="label">Rejected / lost</div><div class="value" id="loss">–</div><div class="sub" id="loss-sub"></div></div>
    <div class="card"><div class="label">Disk free</div><div class="value" id="disk-free">–</div><div class="sub" id="disk-sub"></div></div>
  </section>
  <div class="toolbar">
    <h2>Containers</h2>
    <input type="search" id="filter" placeholder="container or product" aria-label="filter containers">
    <label><input type="checkbox" id="alarms-only"> alarms only</label>
    <span class="count" id="container-count"></span>
  </div>
  <table id="containers" aria-label="containers">
    <thead><tr><th>Container</th><th>Product</th><th class="num">Temperature</th><th class="num">Setpoint</th><th class="num">Δ</th><th>Alarms</th><th>Measured (UTC)</th><th class="num">Received</th><th>Via</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <p class="empty" id="no-containers">No readings yet: containers appear here as soon as they report.</p>
</main>
<script>
(function () {
  'use strict';
  var ALARM_TEXT = { 'door-open': 'door open', 'power-off': 'power off', 'temperature-excursion': 'excursion', 'maintenance': 'maintenance' };
  var readings = new Map();
  var rows = new Map();
  var samples = [];
  var lastSummaryAtMs = 0;
  var $ = function (id) { return document.getElementById(id); };

  function setText(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }
  function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
  function fmtBytes(n) {
    var units = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }
  function fmtAge(ms) {
    if (ms === null || ms === undefined) return '–';
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function fmtTemp(t) { return t === null || t === undefined ? '–' : t.toFixed(1) + ' °C'; }
  function fmtTime(ms) { return new Date(ms).toISOString().replace('T', ' ').slice(0, 19); }

  function rate(field) {
    if (samples.length < 2) return null;
    var a = samples[0], b = samples[samples.length - 1];
    var dt = (b.timeMs - a.timeMs) / 1000;
    return dt > 0 ? Math.max(0, (b[field] - a[field]) / dt) : null;
  }

  function showSummary(s) {
    lastSummaryAtMs = Date.now();
    setText('gateway-id', s.gatewayId);
    document.title = 'reefer-edge · ' + s.gatewayId;
    var badge = $('uplink-state');
    setText('uplink-state', s.uplink);
    badge.className = 'badge ' + s.uplink;
    samples.push({ timeMs: s.timeMs, acceptedTotal: s.acceptedTotal, sent: s.sent });
    while (samples.length > 1 && s.timeMs - samples[0].timeMs > 5000) samples.shift();
    var rin = rate('acceptedTotal'), rout = rate('sent');
    setText('rate-in', rin === null ? '–' : rin.toFixed(1));
    setText('rate-out', rout === null ? '–' : rout.toFixed(1));
    setText('outbox-count', fmtInt(s.outbox.count));
    setText('outbox-sub', fmtBytes(s.outbox.bytes) + ' · ' + fmtInt(s.outbox.alarms) + ' alarms');
    setText('oldest-age', fmtAge(s.outbox.oldestAgeMs));
    $('oldest-card').classList.toggle('alert', s.outbox.oldestAgeMs !== null && s.outbox.oldestAgeMs > 600000);
    setText('devices-online', fmtInt(s.containersOnline));
    setText('devices-sub', fmtInt(s.mqttClients) + ' MQTT clients · ' + fmtInt(s.containersTracked) + ' containers seen');
    setText('loss', fmtInt(s.rejectedTotal) + ' / ' + fmtInt(s.lost));
    setText('loss-sub', fmtInt(s.duplicatesTotal) + ' duplicates · ' + fmtInt(s.refused) + ' refused');
    $('loss-card').classList.toggle('alert', s.lost > 0 || s.refused > 0);
    setText('disk-free', fmtBytes(s.disk.freeBytes));
    setText('disk-sub', s.disk.totalBytes > 0 ? 'of ' + fmtBytes(s.disk.totalBytes) : '');
    var live = $('live');
    live.textContent = (s.ready ? 'live' : 'NOT READY') + ' · ' + fmtTime(s.timeMs) + ' UTC';
    live.className = s.ready ? 'live' : 'live stale';
  }

  function cell(tr, cls) { var td = document.createElement('td'); if (cls) td.className = cls; tr.appendChild(td); return td; }

  function rowFor(r) {
    var tr = rows.get(r.containerId);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.container = r.containerId;
      cell(tr, 'id'); cell(tr, 'product'); cell(tr, 'num temp'); cell(tr, 'num setpoint'); cell(tr, 'num delta');
      cell(tr, 'alarms'); cell(tr, 'measured'); cell(tr, 'num received'); cell(tr, 'via');
      rows.set(r.containerId, tr);
    }
    var c = tr.children;
    c[0].textContent = r.containerId;
    c[1].textContent = r.productId === null ? '–' : r.productId;
    c[2].textContent = fmtTemp(r.temperature);
    c[2].classList.toggle('excursion', r.alarms.indexOf('temperature-excursion') >= 0);
    c[3].textContent = fmtTemp(r.targetTemperature);
    c[4].textContent = r.targetTemperature === null ? '–' : (r.temperature - r.targetTemperature >= 0 ? '+' : '') + (r.temperature - r.targetTemperature).toFixed(1);
    c[5].replaceChildren.apply(c[5], r.alarms.map(function (a) {
      var chip = document.createElement('span');
      chip.className = 'chip ' + a;
      chip.textContent = ALARM_TEXT[a] || a;
      return chip;
    }));
    c[6].textContent = fmtTime(r.measurementMs);
    c[7].dataset.receivedMs = String(r.receivedMs);
    c[8].textContent = r.transport;
    tr.classList.toggle('alarm', r.alarms.length > 0);
    return tr;
  }

  function order(a, b) {
    var aa = a.alarms.length > 0, ba = b.alarms.length > 0;
    if (aa !== ba) return aa ? -1 : 1;
    return a.containerId < b.containerId ? -1 : a.containerId > b.containerId ? 1 : 0;
  }

  function applyFilter() {
    var text = $('filter').value.trim().toLowerCase();
    var alarmsOnly = $('alarms-only').checked;
    var shown = 0, alarms = 0;
    readings.forEach(function (r, id) {
      var visible = (!alarmsOnly || r.alarms.length > 0) &&
        (text === '' || id.toLowerCase().indexOf(text) >= 0 || (r.productId || '').toLowerCase().indexOf(text) >= 0);
      rows.get(id).hidden = !visible;
      if (visible) shown++;
      if (r.alarms.length > 0) alarms++;
    });
    setText('container-count', fmtInt(shown) + ' shown of ' + fmtInt(readings.size) + ' · ' + fmtInt(alarms) + ' in alarm');
    $('no-containers').hidden = readings.size > 0;
  }

  function showContainers(c) {
    var reorder = c.full;
    if (c.full) { readings.clear(); rows.clear(); }
    c.readings.forEach(function (r) {
      var before = readings.get(r.containerId);
      if (!before || (before.alarms.length > 0) !== (r.alarms.length > 0)) reorder = true;
      readings.set(r.containerId, r);
      rowFor(r);
    });
    if (reorder) {
      var body = $('rows');
      var sorted = Array.from(readings.values()).sort(order);
      body.replaceChildren.apply(body, sorted.map(function (r) { return rows.get(r.containerId); }));
    }
    applyFilter();
  }

  function refreshAges() {
    var now = Date.now();
    rows.forEach(function (tr) {
      var td = tr.children[7];
      td.textContent = fmtAge(now - Number(td.dataset.receivedMs)) + ' ago';
    });
    if (lastSummaryAtMs > 0 && now - lastSummaryAtMs > 5000) {
      $('live').textContent = 'no update for ' + fmtAge(now - lastSummaryAtMs) + ', reconnecting…';
      $('live').className = 'live stale';
    }
  }

  $('filter').addEventListener('input', applyFilter);
  $('alarms-only').addEventListener('change', applyFilter);
  setInterval(refreshAges, 1000);

  var events = new EventSource('api/events');
  events.onmessage = function (e) {
    var msg = JSON.parse(e.data);
    showSummary(msg.summary);
    showContainers(msg.containers);
    refreshAges();
  };
  events.onerror = function () {
    $('live').textContent = 'disconnected, reconnecting…';
    $('live').className = 'live stale';
    samples = [];
  };
})();
</script>
</body>
</html>
`;
