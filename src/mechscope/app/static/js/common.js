// mechscope web app: helpers every page uses (window.MS). Model-produced text is only ever
// set with textContent (el(), d3's .text()), never parsed as HTML.
"use strict";
(function () {
  const MS = {};

  // An element: el("td", {class: "num", onclick: f}, "text", child, ...). Strings become text nodes.
  MS.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };
  const el = MS.el;
  // Replace a node's children (null and false children are left out).
  MS.fill = function (node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  };

  MS.data = document.getElementById("app").dataset;
  MS.main = document.getElementById("app");

  // JSON from the app's API; a refusal becomes an Error carrying the server's sentence.
  MS.api = async function (url, options = {}) {
    const init = { method: options.method || "GET", headers: { Accept: "application/json" } };
    if (init.method !== "GET") init.headers["X-Mechscope-Request"] = "1";
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(url, init);
    let payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (!response.ok) {
      const error = new Error((payload && payload.detail) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return payload;
  };

  MS.error = function (container, error) {
    container.append(el("p", { class: "error" }, String(error.message || error)));
  };

  MS.query = function (params) {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, v);
    const text = search.toString();
    return text ? `?${text}` : "";
  };

  MS.fmt = function (value, digits = 3) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "string") return value;
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (Object.is(value, -0)) return "0";
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    if (!Number.isFinite(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(2);
    return value.toFixed(digits);
  };
  MS.pct = (value, digits = 1) => (typeof value === "number" ? `${(100 * value).toFixed(digits)}%` : "—");

  // A token as shown: spaces and newlines made visible.
  MS.visible = function (token) {
    return String(token).replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/^ /, "␣").replace(/ $/, "␣") || "∅";
  };

  // ---------------------------------------------------------------- tooltip
  const tip = el("div", { id: "tooltip" });
  document.body.append(tip);
  MS.tip = {
    show(event, text) {
      tip.textContent = text;
      tip.style.display = "block";
      const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
      tip.style.left = `${x}px`;
      tip.style.top = `${y}px`;
    },
    hide() { tip.style.display = "none"; },
  };

  // ---------------------------------------------------------------- colours
  // Diverging: positive blue, negative red (as the bars and TransformerLens' plots draw them).
  MS.diverging = (max) => d3.scaleDiverging(d3.interpolateRdBu).domain([-(max || 1), 0, max || 1]);
  MS.sequential = (max) => d3.scaleSequential(d3.interpolateBlues).domain([0, max || 1]);
  MS.absMax = (rows) => d3.max(rows.flat().filter(Number.isFinite).map(Math.abs)) || 1;

  // ---------------------------------------------------------------- heatmap
  // values: rows × cols. options: rowLabels, colLabels, title, centered, cell (px), hover(r, c) -> text,
  // click(r, c), marks: {"r,c": text} drawn inside cells.
  MS.heatmap = function (container, values, options = {}) {
    const rows = values.length, cols = rows ? values[0].length : 0;
    const cell = options.cell || Math.max(10, Math.min(26, Math.floor(720 / Math.max(cols, 1))));
    const rowLabels = options.rowLabels || d3.range(rows).map(String);
    const colLabels = options.colLabels || d3.range(cols).map(String);
    const left = 8 + 7 * d3.max(rowLabels, (l) => String(l).length), top = options.title ? 22 : 4;
    const bottom = 8 + Math.min(90, 6.5 * d3.max(colLabels, (l) => String(l).length));
    const width = left + cols * cell + 70, height = top + rows * cell + bottom;
    const colour = options.centered === false ? MS.sequential(options.max || MS.absMax(values))
      : MS.diverging(options.max || MS.absMax(values));
    const svg = d3.select(container).append("svg").attr("class", "heatmap").attr("width", width).attr("height", height);
    if (options.title) svg.append("text").attr("x", 0).attr("y", 14).attr("font-size", 12.5).attr("font-weight", 600).text(options.title);
    const g = svg.append("g").attr("transform", `translate(${left},${top})`);
    const cells = [];
    values.forEach((row, r) => row.forEach((v, c) => cells.push({ r, c, v })));
    g.selectAll("rect.cell").data(cells).join("rect").attr("class", "cell")
      .attr("x", (d) => d.c * cell).attr("y", (d) => d.r * cell).attr("width", cell - 1).attr("height", cell - 1)
      .attr("fill", (d) => (Number.isFinite(d.v) ? colour(d.v) : "#eee"))
      .style("cursor", options.click ? "pointer" : "default")
      .on("mousemove", (event, d) => MS.tip.show(event, options.hover ? options.hover(d.r, d.c, d.v)
        : `${rowLabels[d.r]} · ${colLabels[d.c]}: ${MS.fmt(d.v, 4)}`))
      .on("mouseleave", () => MS.tip.hide())
      .on("click", (event, d) => options.click && options.click(d.r, d.c, d.v));
    if (options.marks) {
      g.selectAll("text.mark").data(cells.filter((d) => options.marks[`${d.r},${d.c}`])).join("text")
        .attr("class", "mark").attr("x", (d) => d.c * cell + cell / 2).attr("y", (d) => d.r * cell + cell / 2 + 3)
        .attr("text-anchor", "middle").attr("font-size", 9).attr("pointer-events", "none").text((d) => options.marks[`${d.r},${d.c}`]);
    }
    const step = Math.ceil(12 / cell);
    g.selectAll("text.row").data(rowLabels.filter((_, i) => i % step === 0)).join("text").attr("class", "row")
      .attr("x", -4).attr("y", (_, i) => i * step * cell + cell / 2 + 4).attr("text-anchor", "end").attr("font-size", 10.5).text((d) => d);
    g.selectAll("text.col").data(colLabels.map((l, i) => ({ l, i })).filter((d) => d.i % step === 0)).join("text").attr("class", "col")
      .attr("transform", (d) => `translate(${d.i * cell + cell / 2 + 3},${rows * cell + 6}) rotate(-60)`)
      .attr("text-anchor", "end").attr("font-size", 10.5).text((d) => MS.visible(d.l));
    // colour scale
    const legend = svg.append("g").attr("transform", `translate(${left + cols * cell + 14},${top})`);
    const h = Math.max(60, Math.min(rows * cell, 160)), domain = colour.domain();
    const lo = d3.min(domain), hi = d3.max(domain);
    d3.range(20).forEach((i) => legend.append("rect").attr("y", (i * h) / 20).attr("width", 10).attr("height", h / 20 + 0.5)
      .attr("fill", colour(hi - ((hi - lo) * i) / 19)));
    legend.append("text").attr("x", 14).attr("y", 9).attr("font-size", 10).text(MS.fmt(hi, 2));
    legend.append("text").attr("x", 14).attr("y", h).attr("font-size", 10).text(MS.fmt(lo, 2));
    return svg.node();
  };

  // ---------------------------------------------------------------- bars
  // Horizontal bars: items [{label, value, title?}], signed values centre the axis.
  MS.bars = function (container, items, options = {}) {
    const width = options.width || 420, barH = 16, left = options.left || 110;
    const max = d3.max(items, (d) => Math.abs(d.value)) || 1;
    const signed = items.some((d) => d.value < 0);
    const x = d3.scaleLinear().domain(signed ? [-max, max] : [0, max]).range([0, width - left - 60]);
    const svg = d3.select(container).append("svg").attr("width", width).attr("height", items.length * barH + 24);
    if (options.title) svg.append("text").attr("y", 12).attr("font-size", 12).attr("font-weight", 600).text(options.title);
    const g = svg.append("g").attr("transform", `translate(${left},18)`);
    const rows = g.selectAll("g").data(items).join("g").attr("transform", (_, i) => `translate(0,${i * barH})`)
      .on("mousemove", (event, d) => MS.tip.show(event, d.title || `${d.label}: ${MS.fmt(d.value, 4)}`))
      .on("mouseleave", () => MS.tip.hide());
    rows.append("rect").attr("x", (d) => x(Math.min(0, d.value))).attr("width", (d) => Math.abs(x(d.value) - x(0)))
      .attr("height", barH - 3).attr("fill", (d) => (d.value < 0 ? "#dc2626" : options.colour || "#2563eb")).attr("opacity", 0.75);
    rows.append("text").attr("x", -6).attr("y", barH - 6).attr("text-anchor", "end").attr("font-size", 11)
      .text((d) => (options.visible ? MS.visible(d.label) : d.label));
    rows.append("text").attr("x", (d) => x(Math.max(0, d.value)) + 4).attr("y", barH - 6).attr("font-size", 10.5)
      .attr("fill", "#475569").text((d) => MS.fmt(d.value, 3));
    return svg.node();
  };

  // ---------------------------------------------------------------- line chart
  // series: [{label, x: [...], y: [...], colour?}], options: xlog, band [lo, hi], marks [{label, x, y}], xlabel, ylabel.
  MS.lines = function (container, series, options = {}) {
    const width = options.width || 560, height = options.height || 300, m = { l: 46, r: 12, t: 24, b: 40 };
    const xs = series.flatMap((s) => s.x).concat((options.marks || []).map((d) => d.x)).filter((v) => v > 0);
    const ys = series.flatMap((s) => s.y).concat((options.marks || []).map((d) => d.y)).filter(Number.isFinite);
    const x = (options.xlog ? d3.scaleLog() : d3.scaleLinear()).domain(d3.extent(xs)).range([m.l, width - m.r]);
    const y = d3.scaleLinear().domain([Math.min(0, d3.min(ys)), Math.max(1.2, d3.max(ys))]).nice().range([height - m.b, m.t]);
    const svg = d3.select(container).append("svg").attr("width", width).attr("height", height);
    if (options.title) svg.append("text").attr("x", m.l).attr("y", 14).attr("font-size", 12).attr("font-weight", 600).text(options.title);
    if (options.band) svg.append("rect").attr("x", m.l).attr("width", width - m.l - m.r).attr("y", y(options.band[1]))
      .attr("height", y(options.band[0]) - y(options.band[1])).attr("fill", "#dcfce7");
    svg.append("g").attr("transform", `translate(0,${height - m.b})`).call(d3.axisBottom(x).ticks(6, options.xlog ? "~%" : undefined));
    svg.append("g").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(y).ticks(6));
    if (options.xlabel) svg.append("text").attr("x", (width + m.l) / 2).attr("y", height - 6).attr("text-anchor", "middle").attr("font-size", 11).text(options.xlabel);
    if (options.ylabel) svg.append("text").attr("transform", `translate(12,${(height - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("font-size", 11).text(options.ylabel);
    const colours = d3.schemeTableau10;
    series.forEach((s, i) => {
      const colour = s.colour || colours[i % 10];
      const points = s.x.map((v, j) => ({ x: v, y: s.y[j] })).filter((p) => p.x > 0 && Number.isFinite(p.y));
      svg.append("path").datum(points).attr("fill", "none").attr("stroke", colour).attr("stroke-width", 2)
        .attr("d", d3.line().x((p) => x(p.x)).y((p) => y(p.y)));
      svg.append("g").selectAll("circle").data(points).join("circle").attr("cx", (p) => x(p.x)).attr("cy", (p) => y(p.y))
        .attr("r", 4).attr("fill", colour)
        .on("mousemove", (event, p) => MS.tip.show(event, `${s.label}\nbudget ${MS.pct(p.x, 2)}: f = ${MS.fmt(p.y)}`))
        .on("mouseleave", () => MS.tip.hide());
      svg.append("text").attr("x", m.l + 8).attr("y", m.t + 10 + 13 * i).attr("font-size", 11).attr("fill", colour).text(s.label);
    });
    (options.marks || []).forEach((d, i) => {
      svg.append("path").attr("d", d3.symbol(d3.symbolStar, 90)()).attr("transform", `translate(${x(d.x)},${y(d.y)})`)
        .attr("fill", d3.schemeSet1[i % 9]).on("mousemove", (event) => MS.tip.show(event, `${d.label}: f = ${MS.fmt(d.y)} at ${MS.pct(d.x, 2)}`))
        .on("mouseleave", () => MS.tip.hide());
    });
    return svg.node();
  };

  // ---------------------------------------------------------------- tokens
  // Coloured tokens (CircuitsVis' colored_tokens): values in [0, max] shade orange; hover shows the value.
  MS.tokens = function (tokens, values, options = {}) {
    const max = options.max || d3.max((values || [0]).map(Math.abs)) || 1;
    const box = el("div", { class: "tokens" });
    tokens.forEach((token, i) => {
      const v = values ? values[i] : 0;
      const alpha = Math.max(0, Math.min(1, Math.abs(v) / max));
      const colour = v < 0 ? `rgba(37,99,235,${alpha})` : `rgba(234,88,12,${alpha})`;
      const span = el("span", { class: "tok" + (options.center === i ? " center" : ""), style: { background: colour } },
        MS.visible(token));
      span.addEventListener("mousemove", (event) => {
        if (options.hover) options.hover(i); // first: it may redraw what the title describes
        MS.tip.show(event, options.title ? options.title(i, v) : `${JSON.stringify(token)}  ${MS.fmt(v, 3)}`);
      });
      span.addEventListener("mouseleave", () => { MS.tip.hide(); if (options.leave) options.leave(i); });
      if (options.click) span.addEventListener("click", () => options.click(i));
      box.append(span);
    });
    return box;
  };

  // A collapsible view of any JSON value (long arrays cut, with their length).
  MS.jsonTree = function (value, depth = 0) {
    if (value === null || typeof value !== "object") {
      const cls = typeof value === "string" ? "s" : "n";
      return el("span", { class: cls }, JSON.stringify(value));
    }
    const entries = Array.isArray(value) ? value.slice(0, 50).map((v, i) => [i, v]) : Object.entries(value);
    const label = Array.isArray(value) ? `[${value.length}]` : `{${Object.keys(value).length}}`;
    const details = el("details", { class: "jsontree", open: depth < 1 });
    details.append(el("summary", {}, label));
    for (const [k, v] of entries) details.append(el("div", {}, el("span", { class: "k" }, `${k}: `), MS.jsonTree(v, depth + 1)));
    if (Array.isArray(value) && value.length > 50) details.append(el("div", { class: "note" }, `… ${value.length - 50} more`));
    return details;
  };

  MS.card = function (title, id, seconds) {
    const card = el("section", { class: "card", id });
    card.append(el("h2", {}, title, seconds !== undefined && seconds !== null
      ? el("span", { class: "time" }, `${MS.fmt(seconds, 1)} s`) : null));
    return card;
  };

  MS.table = function (headers, rows, numeric = []) {
    const table = el("table");
    table.append(el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: numeric.includes(i) ? "num" : null }, h)))));
    const body = el("tbody");
    rows.forEach((row) => body.append(el("tr", {}, row.map((cell, i) => el("td", { class: numeric.includes(i) ? "num" : null },
      cell instanceof Node ? cell : MS.fmt(cell))))));
    table.append(body);
    return table;
  };

  MS.ready = function () { document.body.dataset.ready = "1"; };

  MS.status = async function () {
    const box = document.getElementById("model-status");
    try {
      const s = await MS.api("/api/status");
      box.textContent = s.model ? `model: ${s.model}${s.loaded ? "" : " (loads on first use)"}${s.sae ? " · SAE" : ""}` : "no model chosen";
    } catch (e) { box.textContent = ""; }
  };
  MS.status();

  window.MS = MS;
})();
