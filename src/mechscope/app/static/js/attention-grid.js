// The attention grid (CircuitsVis' attention_patterns): one thumbnail per head, a row per layer,
// each row's patterns fetched only when it scrolls into view. Click a head for its pattern at full
// size and its tokens: hover a token to see where it attends (orange) and what attends to it (blue).
"use strict";
(function () {
  const { el, api, fmt } = MS;

  // container: where to draw; source: {prompt, run}; options: {layer, head} to open at once.
  MS.attentionGrid = async function (container, source, options = {}) {
    const info = await api("/api/attention" + MS.query(source));
    info.roles = {};
    window.MS_ATTN = info; // for tests and benchmarks: the grid's size
    const n = info.tokens.length;
    const size = Math.max(56, Math.min(110, 6 * n));
    const detail = el("div", { class: "panel", id: "head-detail" }, el("p", { class: "note" }, "Click a head to open its pattern."));
    const grid = el("div", { class: "attn-grid", id: "attn-grid" });
    const rolesNote = el("span", { id: "roles-from" }, "roles: loading…");
    container.replaceChildren(
      el("p", { class: "sub" }, `${info.model} · ${info.n_layers} layers × ${info.n_heads} heads · ${n} tokens · `, rolesNote),
      MS.tokens(info.tokens, null, { title: (i) => `position ${i}: ${JSON.stringify(info.tokens[i])}` }),
      el("div", { class: "split" }, grid, detail));
    grid.append(el("div", { class: "attn-head-labels" }, Array.from({ length: info.n_heads }, (_, h) =>
      el("span", { style: { width: `${size + 2}px` } }, `H${h}`))));
    const layers = new Map(); // layer -> Promise of patterns
    const fetchLayer = (layer) => {
      if (!layers.has(layer)) {
        layers.set(layer, api(`/api/attention/layer/${layer}` + MS.query(source)).then((d) => d.patterns));
      }
      return layers.get(layer);
    };
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        drawRow(entry.target, +entry.target.dataset.layer);
      }
    }, { rootMargin: "120px" });

    async function drawRow(row, layer) {
      try {
        const patterns = await fetchLayer(layer);
        row.querySelectorAll("canvas").forEach((canvas, head) => paint(canvas, patterns[head]));
        row.dataset.loaded = "1";
      } catch (error) { row.append(el("span", { class: "error" }, error.message)); row.dataset.loaded = "error"; }
    }

    // Roles come separately (scoring them live takes a few seconds on a real model): badges appear when they do.
    api("/api/heads/roles" + MS.query({ run: source.run })).then((found) => {
      info.roles = found.roles;
      rolesNote.textContent = `roles: ${found.from}`;
      for (const [name, role] of Object.entries(found.roles)) {
        const cell = grid.querySelector(`[data-head="${name}"]`);
        if (!cell) continue;
        cell.title = `${name} — ${role}`;
        cell.append(el("span", { class: "rl" }, role.split(" ")[0]));
      }
      if (selected && detail.dataset.head && found.roles[detail.dataset.head]) {
        detail.querySelector("h3").after(el("p", {}, el("span", { class: "badge role" }, found.roles[detail.dataset.head])));
      }
    }).catch((error) => { rolesNote.textContent = `roles: ${error.message}`; });

    let selected = null;
    for (let layer = 0; layer < info.n_layers; layer++) {
      const row = el("div", { class: "attn-row", "data-layer": layer }, el("span", { class: "lab" }, `L${layer}`));
      for (let head = 0; head < info.n_heads; head++) {
        const canvas = el("canvas", { width: n, height: n, style: { width: `${size}px`, height: `${size}px`, imageRendering: "pixelated" } });
        const cell = el("div", { class: "attn-cell", "data-head": `L${layer}H${head}`, title: `L${layer}H${head}`,
          onclick: () => open(layer, head, cell) }, canvas, el("span", { class: "hl" }, `L${layer}H${head}`));
        row.append(cell);
      }
      grid.append(row);
      observer.observe(row);
    }

    async function open(layer, head, cell) {
      if (selected) selected.classList.remove("selected");
      selected = cell || grid.querySelector(`[data-head="L${layer}H${head}"]`);
      if (selected) selected.classList.add("selected");
      const patterns = await fetchLayer(layer);
      showHead(detail, info, layer, head, patterns[head]);
      if (options.onOpen) options.onOpen(layer, head);
    }
    if (options.layer !== undefined && options.layer !== null && options.layer !== "") {
      const layer = +options.layer, head = +(options.head || 0);
      const target = grid.querySelector(`[data-head="L${layer}H${head}"]`);
      if (target) target.scrollIntoView({ block: "center" });
      await open(layer, head, target);
    }
    return info;
  };

  // A pattern as pixels: row = query, column = key, darker = more attention.
  function paint(canvas, pattern) {
    const n = pattern.length, ctx = canvas.getContext("2d"), image = ctx.createImageData(n, n);
    for (let q = 0; q < n; q++) {
      for (let k = 0; k < n; k++) {
        const v = Math.max(0, Math.min(1, pattern[q][k])), i = 4 * (q * n + k);
        image.data[i] = 255 - 225 * v; image.data[i + 1] = 255 - 180 * v; image.data[i + 2] = 255 - 60 * v; image.data[i + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
  }

  function showHead(panel, info, layer, head, pattern) {
    const name = `L${layer}H${head}`;
    const tokens = info.tokens;
    MS.fill(panel, el("h3", {}, name), info.roles[name] ? el("p", {}, el("span", { class: "badge role" }, info.roles[name])) : null);
    const figure = el("div");
    panel.append(figure);
    MS.heatmap(figure, pattern, { rowLabels: tokens.map((t, i) => `${i} ${MS.visible(t)}`.slice(0, 14)), colLabels: tokens,
      centered: false, max: 1, cell: Math.max(6, Math.min(16, Math.floor(260 / tokens.length))),
      hover: (q, k, v) => `query ${q} ${JSON.stringify(tokens[q])} → key ${k} ${JSON.stringify(tokens[k])}: ${fmt(v, 3)}` });
    const strip = el("div", { class: "tokstrip" });
    const caption = el("p", { class: "note" }, "Hover a token: orange = where it attends, blue = what attends to it.");
    let center = null;
    const title = (k) => (center === null ? `position ${k}: hover to see its attention`
      : `${JSON.stringify(tokens[k])}: gets ${fmt(pattern[center][k], 3)} from position ${center}; `
        + `gives ${fmt(pattern[k][center], 3)} to it`);
    const paintStrip = (i) => {
      if (center === i) return;
      center = i;
      const from = pattern[i], to = pattern.map((row) => -row[i]);
      const values = from.map((v, k) => (v >= Math.abs(to[k]) ? v : to[k]));
      strip.replaceChildren(MS.tokens(tokens, values, { max: 1, center: i, hover: paintStrip, title }));
    };
    strip.append(MS.tokens(tokens, null, { hover: paintStrip, title }));
    panel.append(el("h3", {}, "Tokens"), strip, caption);
    const top = d3.range(tokens.length).map((q) => [q, d3.maxIndex(pattern[q])]);
    panel.append(el("h3", {}, "Strongest key per query"), MS.table(["query", "attends most to", "weight"],
      top.slice(-8).map(([q, k]) => [`${q} ${MS.visible(tokens[q])}`, `${k} ${MS.visible(tokens[k])}`, pattern[q][k]]), [2]));
    panel.dataset.head = name;
  }
})();
