(function () {
"use strict";
var DATA = JSON.parse(document.getElementById("audit-data").textContent);
document.body.classList.remove("no-js");
var PER_PAGE = Math.max(1, DATA.rows_per_page || 50);
var CHECKS = DATA.checks || [];
var SEV = ["error", "warning", "info", "none"];
var TEXTS = DATA.texts || {};
var CHECK_COLOURS = ["#e8590c", "#c92a2a", "#7048e8", "#2b8a3e", "#1971c2", "#d6336c", "#0c8599", "#5c940d", "#862e9c", "#495057"];
var CLUSTERS = DATA.clusters || [];
var CLUSTER_BY_ID = {};
CLUSTERS.forEach(function (c) { CLUSTER_BY_ID[c.id] = c; });

// Build elements; every string becomes a text node, never markup.
function h(tag, props, children) {
  var el = document.createElement(tag);
  if (props) {
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null) return;
      if (k === "text") el.textContent = String(v);
      else if (k === "cls") el.className = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, String(v));
    });
  }
  add(el, children);
  return el;
}
function add(parent, child) {
  if (child === undefined || child === null) return;
  if (Array.isArray(child)) { child.forEach(function (c) { add(parent, c); }); return; }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}
function fmtInt(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
function fmtNum(x, d) { return x === null || x === undefined || !isFinite(x) ? "—" : Number(x).toFixed(d === undefined ? 2 : d); }
function fmtPct(x) { return x === null || x === undefined || !isFinite(x) ? "—" : (100 * x).toFixed(0) + "%"; }
function sevName(rank) { return SEV[rank] || "none"; }
function sevBadge(rank) { var n = sevName(rank); return h("span", {cls: "sev sev-" + n, text: n}); }
function clusterName(id) {
  if (id === null || id === undefined) return "—";
  var c = CLUSTER_BY_ID[id];
  if (id < 0) return "unclustered";
  return c ? "#" + id + " " + c.label : "#" + id;
}
function textOf(row, field) { var t = TEXTS[row]; return t ? t[field] : null; }
function textCell(s) {
  if (s === null || s === undefined) return h("div", {cls: "txt"}, h("span", {cls: "muted", text: "—"}));
  if (String(s).trim() === "") return h("div", {cls: "txt"}, h("span", {cls: "muted", text: s === "" ? "(empty)" : "(whitespace only)"}));
  return h("div", {cls: "txt", text: String(s)});
}
function hasText(rows, field) { return rows.some(function (row) { var t = textOf(row, field); return t !== null && t !== undefined; }); }
function flagNames(mask) {
  var names = [];
  CHECKS.forEach(function (name, i) { if (mask & (1 << i)) names.push(name); });
  return names;
}
function compare(a, b) {
  var an = a === null || a === undefined, bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

// A client-side paginated, sortable table.
function dataTable(columns, items, opts) {
  opts = opts || {};
  var perPage = opts.perPage || PER_PAGE;
  var wrap = h("div", {cls: "tbl"});
  var tbody = h("tbody");
  var nav = h("div", {cls: "pager"});
  var order = items.slice(), page = 0, sortCol = -1, asc = true, selectedTr = null;
  var headRow = h("tr");
  columns.forEach(function (col, i) {
    var th = h("th", {cls: (col.num ? "num" : "") + (col.sort ? " sortable" : ""), text: col.title, title: col.sort ? "sort" : null});
    if (col.sort) th.addEventListener("click", function () {
      asc = sortCol === i ? !asc : !col.num;
      sortCol = i;
      order = items.slice().sort(function (a, b) {
        var an = col.sort(a), bn = col.sort(b);
        var nullA = an === null || an === undefined, nullB = bn === null || bn === undefined;
        if (nullA || nullB) return compare(an, bn);
        return asc ? compare(an, bn) : compare(bn, an);
      });
      page = 0; draw();
    });
    headRow.appendChild(th);
  });
  var table = h("table", {cls: "grid"}, [h("thead", null, headRow), tbody]);
  function draw() {
    tbody.textContent = "";
    var pages = Math.max(1, Math.ceil(order.length / perPage));
    page = Math.min(Math.max(page, 0), pages - 1);
    order.slice(page * perPage, (page + 1) * perPage).forEach(function (item) {
      var tr = h("tr");
      if (opts.onRow) {
        tr.classList.add("clickable");
        tr.addEventListener("click", function () {
          if (selectedTr) selectedTr.classList.remove("selected");
          selectedTr = tr; tr.classList.add("selected");
          opts.onRow(item);
        });
      }
      columns.forEach(function (col) { tr.appendChild(h("td", {cls: col.num ? "num" : null}, col.get(item))); });
      tbody.appendChild(tr);
    });
    nav.textContent = "";
    if (pages > 1) {
      add(nav, [
        h("button", {type: "button", text: "‹ prev", disabled: page === 0 ? "disabled" : null, onclick: function () { page--; draw(); }}),
        h("span", {text: "page " + (page + 1) + " of " + pages + " · " + fmtInt(order.length) + " rows"}),
        h("button", {type: "button", text: "next ›", disabled: page >= pages - 1 ? "disabled" : null, onclick: function () { page++; draw(); }})
      ]);
    } else {
      add(nav, h("span", {text: fmtInt(order.length) + (order.length === 1 ? " row" : " rows")}));
    }
  }
  draw();
  add(wrap, [table, nav]);
  return wrap;
}

// ---- map -------------------------------------------------------------------------------
var MAP = (function () {
  var M = DATA.map || {};
  var canvas = document.getElementById("map-canvas");
  var tip = document.getElementById("map-tip");
  var n = (M.x || []).length;
  var api = {select: function () {}};
  if (!canvas) return api;
  var count = document.getElementById("map-count");
  if (!n) {
    canvas.parentElement.replaceWith(h("p", {cls: "muted", text: "No rows with 2-D coordinates to draw."}));
    return api;
  }
  add(count, fmtInt(M.shown) + " of " + fmtInt(M.total) + " rows drawn" +
    (M.shown < M.placed ? " (seeded sample; all " + fmtInt(M.flagged) + " flagged rows kept)" : ""));
  var ctx = canvas.getContext("2d");
  var W = 0, H = 0, dpr = 1, zoom = 1, panX = 0, panY = 0, base = 1, offX = 0, offY = 0;
  var mode = "cluster", selected = null, hover = -1;
  var sx = new Float32Array(n), sy = new Float32Array(n);
  function clusterColour(c) {
    if (c === null || c === undefined || c < 0) return "#b8bec6";
    return "hsl(" + ((c * 137.508) % 360).toFixed(1) + ",62%," + (c % 2 ? "46%" : "56%") + ")";
  }
  function colour(i) {
    if (mode === "issue") return M.m[i] ? CHECK_COLOURS[M.k[i] % CHECK_COLOURS.length] || "#495057" : "#c9ced6";
    return clusterColour(M.c[i]);
  }
  function layout() {
    var rect = canvas.getBoundingClientRect();
    W = Math.max(100, rect.width); H = Math.max(100, rect.height);
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    var pad = 14;
    base = Math.min((W - 2 * pad) / M.w, (H - 2 * pad) / M.h);
    offX = (W - M.w * base) / 2; offY = (H - M.h * base) / 2;
    draw();
  }
  function project() {
    for (var i = 0; i < n; i++) {
      sx[i] = (offX + M.x[i] * base) * zoom + panX;
      sy[i] = (offY + M.y[i] * base) * zoom + panY;
    }
  }
  function drawBatch(indices, radius, stroke) {
    var batches = {};
    indices.forEach(function (i) { var c = colour(i); (batches[c] = batches[c] || []).push(i); });
    Object.keys(batches).forEach(function (c) {
      ctx.beginPath();
      batches[c].forEach(function (i) {
        if (sx[i] < -5 || sy[i] < -5 || sx[i] > W + 5 || sy[i] > H + 5) return;
        ctx.moveTo(sx[i] + radius, sy[i]);
        ctx.arc(sx[i], sy[i], radius, 0, 6.2832);
      });
      ctx.fillStyle = c; ctx.fill();
      if (stroke) { ctx.lineWidth = 0.8; ctx.strokeStyle = "#1d2330"; ctx.stroke(); }
    });
  }
  function draw() {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    project();
    var dim = [], plain = [], flagged = [];
    for (var i = 0; i < n; i++) {
      if (selected !== null && M.c[i] !== selected) dim.push(i);
      else if (M.m[i]) flagged.push(i);
      else plain.push(i);
    }
    if (dim.length) {
      ctx.beginPath();
      dim.forEach(function (i) { ctx.moveTo(sx[i] + 1.6, sy[i]); ctx.arc(sx[i], sy[i], 1.6, 0, 6.2832); });
      ctx.fillStyle = "#e4e7eb"; ctx.fill();
    }
    var r = Math.min(5, 2 * Math.sqrt(zoom));
    drawBatch(plain, mode === "issue" ? r * 0.8 : r, false);
    drawBatch(flagged, r * 1.5, true);
    if (hover >= 0) {
      ctx.beginPath(); ctx.arc(sx[hover], sy[hover], r * 2.4, 0, 6.2832);
      ctx.lineWidth = 2; ctx.strokeStyle = "#2f5fd0"; ctx.stroke();
    }
  }
  function legend() {
    var host = document.getElementById("map-legend");
    host.textContent = "";
    if (mode === "issue") {
      add(host, h("span", null, [h("span", {cls: "sw", style: "background:#c9ced6"}), "no issue"]));
      CHECKS.forEach(function (name, i) {
        var total = 0;
        for (var j = 0; j < n; j++) if (M.m[j] && M.k[j] === i) total++;
        add(host, h("span", null, [h("span", {cls: "sw", style: "background:" + CHECK_COLOURS[i % CHECK_COLOURS.length]}), name + " (" + fmtInt(total) + ")"]));
      });
      add(host, h("span", {cls: "muted", text: "a row flagged by several checks takes the colour of its most severe finding"}));
    } else {
      add(host, h("span", {cls: "muted", text: "colour = cluster (" + fmtInt(CLUSTERS.filter(function (c) { return c.id >= 0; }).length) + " clusters); grey = unclustered; outlined = flagged by a check"}));
    }
  }
  function nearest(mx, my) {
    var best = -1, bestD = 64;
    for (var i = 0; i < n; i++) {
      if (selected !== null && M.c[i] !== selected) continue;
      var dx = sx[i] - mx, dy = sy[i] - my, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function showTip(i, mx, my) {
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = "";
    add(tip, [
      h("div", {cls: "h", text: "row " + M.row[i] + " · " + clusterName(M.c[i])}),
      h("div", {text: M.p[i] === null || M.p[i] === undefined ? "(no prompt)" : M.p[i]})
    ]);
    if (M.m[i]) add(tip, h("div", {cls: "f", text: "flagged: " + flagNames(M.m[i]).join(", ") + " (" + sevName(M.s[i]) + ")"}));
    tip.hidden = false;
    var left = mx + 14, top = my + 14;
    if (left + tip.offsetWidth > W) left = Math.max(0, mx - tip.offsetWidth - 14);
    if (top + tip.offsetHeight > H) top = Math.max(0, my - tip.offsetHeight - 14);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  }
  var dragging = null, moved = false, pending = null;
  function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  canvas.addEventListener("mousemove", function (e) {
    var p = local(e);
    if (dragging) {
      panX += p[0] - dragging[0]; panY += p[1] - dragging[1];
      if (Math.abs(p[0] - dragging[0]) + Math.abs(p[1] - dragging[1]) > 0) moved = true;
      dragging = p; tip.hidden = true; draw(); return;
    }
    if (pending) return;
    pending = window.requestAnimationFrame(function () {
      pending = null;
      var i = nearest(p[0], p[1]);
      if (i !== hover) { hover = i; draw(); }
      showTip(i, p[0], p[1]);
    });
  });
  canvas.addEventListener("mouseleave", function () { dragging = null; hover = -1; tip.hidden = true; draw(); });
  canvas.addEventListener("mousedown", function (e) { dragging = local(e); moved = false; });
  window.addEventListener("mouseup", function () { dragging = null; });
  canvas.addEventListener("click", function (e) {
    if (moved) return;
    var p = local(e), i = nearest(p[0], p[1]);
    if (i >= 0) showCluster(M.c[i]);
    else api.select(null);
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e), f = Math.exp(-e.deltaY * 0.0015);
    var z = Math.min(200, Math.max(0.5, zoom * f)); f = z / zoom; zoom = z;
    panX = p[0] - (p[0] - panX) * f; panY = p[1] - (p[1] - panY) * f;
    draw();
  }, {passive: false});
  document.getElementById("map-reset").addEventListener("click", function () { zoom = 1; panX = 0; panY = 0; draw(); });
  Array.prototype.forEach.call(document.querySelectorAll("input[name=map-colour]"), function (input) {
    input.addEventListener("change", function () { mode = input.value === "issue" ? "issue" : "cluster"; legend(); draw(); });
  });
  window.addEventListener("resize", layout);
  api.select = function (id) {
    selected = id === undefined ? null : id;
    var note = document.getElementById("map-selection");
    note.textContent = "";
    if (selected !== null) {
      add(note, ["Showing cluster " + clusterName(selected) + " — ",
        h("a", {href: "#cluster-detail", text: "its examples"}), " · ",
        h("a", {href: "#map", text: "show all", onclick: function (e) { e.preventDefault(); api.select(null); }})]);
    }
    draw();
  };
  legend();
  layout();
  return api;
})();

// ---- clusters --------------------------------------------------------------------------
var clusterDetail = document.getElementById("cluster-detail");
function showCluster(id) {
  var c = CLUSTER_BY_ID[id];
  MAP.select(id);
  if (!clusterDetail) return;
  clusterDetail.textContent = "";
  if (!c) return;
  clusterDetail.className = "detail";
  var facts = [fmtInt(c.size) + " rows"];
  if (c.stability !== null) facts.push("stability " + fmtNum(c.stability));
  if (c.format_consistency !== null) facts.push("format consistency " + fmtPct(c.format_consistency));
  if (c.format_majority) facts.push("majority format: " + c.format_majority);
  var reps = {};
  (c.representatives || []).forEach(function (r) { reps[r] = true; });
  var items = (c.examples || []).map(function (row) { return {row: row}; });
  add(clusterDetail, [
    h("h3", {text: "Cluster " + clusterName(id)}),
    h("p", {cls: "muted", text: facts.join(" · ")}),
    c.keywords && c.keywords.length ? h("p", {cls: "chips"}, c.keywords.map(function (k) { return h("span", {cls: "chip", text: k}); })) : null,
    h("p", {cls: "muted", text: "Showing " + fmtInt(items.length) + " of " + fmtInt(c.size) + " rows: representatives first, then flagged rows, then a seeded sample."}),
    dataTable([
      {title: "row", get: function (it) { return it.row; }, sort: function (it) { return it.row; }, num: true},
      {title: "line", get: function (it) { var l = textOf(it.row, 0); return l === null ? "—" : l; }, num: true},
      {title: "role", get: function (it) {
        var flags = flagNames(textOf(it.row, 4) || 0);
        return [reps[it.row] ? h("span", {cls: "badge ok", text: "representative"}) : null, " ",
          flags.length ? h("span", {cls: "badge bad", text: flags.join(", ")}) : null];
      }},
      {title: "prompt", get: function (it) { return textCell(textOf(it.row, 1)); }},
      hasText(c.examples || [], 2) ? {title: "response", get: function (it) { return textCell(textOf(it.row, 2)); }} : null,
      hasText(c.examples || [], 3) ? {title: "label", get: function (it) { return textCell(textOf(it.row, 3)); }} : null
    ].filter(Boolean), items)
  ]);
}
(function () {
  var host = document.getElementById("clusters-table");
  if (!host) return;
  if (!CLUSTERS.length) { add(host, h("p", {cls: "muted", text: "No clusters."})); return; }
  var columns = [
    {title: "cluster", get: function (c) { return c.id < 0 ? "—" : c.id; }, sort: function (c) { return c.id; }, num: true},
    {title: "label", get: function (c) { return c.label; }, sort: function (c) { return c.label; }},
    {title: "size", get: function (c) { return fmtInt(c.size); }, sort: function (c) { return c.size; }, num: true},
    {title: "stability", get: function (c) { return fmtNum(c.stability); }, sort: function (c) { return c.stability; }, num: true},
    {title: "format consistency", get: function (c) { return fmtPct(c.format_consistency); }, sort: function (c) { return c.format_consistency; }, num: true}
  ];
  CHECKS.forEach(function (name, i) {
    columns.push({title: name, num: true, get: function (c) { return c.issues[i] ? fmtInt(c.issues[i]) : "·"; }, sort: function (c) { return c.issues[i]; }});
  });
  columns.push({title: "keywords", get: function (c) { return (c.keywords || []).slice(0, 6).join(", "); }});
  add(host, dataTable(columns, CLUSTERS, {onRow: function (c) { showCluster(c.id); }}));
})();

// ---- checks ----------------------------------------------------------------------------
function groupsView(groups, check) {
  var wrap = h("div");
  var perPage = 5, page = 0;
  var list = h("div"), nav = h("div", {cls: "pager"});
  var hasLabel = groups.some(function (g) { return hasText(g.rows, 3); });
  var hasResponse = groups.some(function (g) { return hasText(g.rows, 2); });
  function member(row, reason) {
    return h("div", {cls: "member"}, [
      h("div", {cls: "muted", text: "row " + row + (textOf(row, 0) !== null && textOf(row, 0) !== undefined ? " · line " + textOf(row, 0) : "")}),
      reason ? h("div", {cls: "sev sev-warning", text: reason}) : h("div", {cls: "muted", text: "kept (not flagged)"}),
      hasLabel ? [h("div", {cls: "field", text: "label"}), h("div", {cls: "lab txt", text: textOf(row, 3) === null || textOf(row, 3) === undefined ? "—" : textOf(row, 3)})] : null,
      h("div", {cls: "field", text: "prompt"}), textCell(textOf(row, 1)),
      hasResponse ? [h("div", {cls: "field", text: "response"}), textCell(textOf(row, 2))] : null
    ]);
  }
  function draw() {
    list.textContent = ""; nav.textContent = "";
    var pages = Math.max(1, Math.ceil(groups.length / perPage));
    groups.slice(page * perPage, (page + 1) * perPage).forEach(function (g) {
      add(list, h("div", {cls: "group"}, [
        h("div", null, [h("b", {text: "group " + g.group}), h("span", {cls: "muted", text: " · " + fmtInt(g.size) + " rows" + (g.size > g.rows.length ? " (first " + g.rows.length + " shown)" : "")})]),
        h("div", {cls: "members"}, g.rows.map(function (row, j) { return member(row, (g.reasons || [])[j]); }))
      ]));
    });
    if (pages > 1) add(nav, [
      h("button", {type: "button", text: "‹ prev", disabled: page === 0 ? "disabled" : null, onclick: function () { page--; draw(); }}),
      h("span", {text: "groups page " + (page + 1) + " of " + pages + " · " + fmtInt(groups.length) + " groups"}),
      h("button", {type: "button", text: "next ›", disabled: page >= pages - 1 ? "disabled" : null, onclick: function () { page++; draw(); }})
    ]);
  }
  draw();
  add(wrap, [list, nav]);
  return wrap;
}
Array.prototype.forEach.call(document.querySelectorAll(".js-check"), function (host) {
  var i = Number(host.getAttribute("data-check"));
  var F = (DATA.findings || [])[i], G = (DATA.groups || [])[i] || [];
  if (G.length) add(host, [h("h3", {text: "Groups, members side by side"}), groupsView(G, i)]);
  if (!F || !F.row.length) { add(host, h("p", {cls: "muted", text: "No rows flagged."})); return; }
  var items = F.row.map(function (row, j) {
    return {row: row, score: F.score[j], sev: F.sev[j], group: F.group[j], kind: (F.kind || [])[j], reason: F.reason[j],
      suggestion: F.suggestion[j], value: (F.suggested_value || [])[j], verdict: (F.verdict || [])[j]};
  });
  function present(key) { return items.some(function (it) { return it[key] !== null && it[key] !== undefined; }); }
  var grouped = present("group");
  add(host, [h("h3", {text: "Worst rows"}), dataTable([
    {title: "severity", get: function (it) { return sevBadge(it.sev); }, sort: function (it) { return it.sev; }},
    {title: "score", get: function (it) { return fmtNum(it.score, 3); }, sort: function (it) { return it.score; }, num: true},
    {title: "row", get: function (it) { return it.row; }, sort: function (it) { return it.row; }, num: true},
    grouped ? {title: "group", get: function (it) { return it.group === null ? "" : it.group; }, sort: function (it) { return it.group; }, num: true} : null,
    present("kind") ? {title: "kind", get: function (it) { return it.kind === null || it.kind === undefined ? "" : it.kind; }, sort: function (it) { return it.kind; }} : null,
    {title: "prompt", get: function (it) { return textCell(textOf(it.row, 1)); }},
    hasText(F.row, 2) ? {title: "response", get: function (it) { return textCell(textOf(it.row, 2)); }} : null,
    hasText(F.row, 3) ? {title: "label", get: function (it) { return textCell(textOf(it.row, 3)); }} : null,
    {title: "reason", get: function (it) { return textCell(it.reason); }},
    {title: "suggestion", get: function (it) { return textCell(it.suggestion); }},
    present("value") ? {title: "suggested value", get: function (it) { return textCell(it.value); }} : null,
    present("verdict") ? {title: "fine-tune verdict", get: function (it) { return it.verdict === null || it.verdict === undefined ? "" : it.verdict; }, sort: function (it) { return it.verdict; }} : null
  ].filter(Boolean), items)]);
});
})();
