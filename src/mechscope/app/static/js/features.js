// Features: stored SAE dashboards (Neuronpedia-like): search by index, explanation or tokens; open a
// feature's dashboard; choose features and export them in Neuronpedia's batch JSON layout.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;
  const state = { source: MS.data.source || "", q: MS.data.q || "", feature: MS.data.feature || "" };
  const chosen = new Set();

  async function load() {
    const { sources } = await api("/api/features/sources");
    main.replaceChildren(el("h1", {}, "Features"));
    if (!sources.length) {
      main.append(el("p", { class: "note" }, "No stored feature dashboards yet. Run an investigation with an SAE "
        + "(mechscope investigate MODEL --task ioi --sae DIR), and its features appear here."));
      MS.ready();
      return;
    }
    if (!state.source) state.source = sources[0].id;
    const select = el("select", { id: "source", onchange: () => { state.source = select.value; state.feature = ""; chosen.clear(); list(); } },
      sources.map((s) => el("option", { value: s.id, selected: s.id === state.source },
        `${s.model} · ${s.hook_name} · ${s.n_features} of ${fmt(s.d_sae)} features · run ${s.run}`)));
    const search = el("input", { id: "search", type: "search", placeholder: "index (12), explanation words, or tokens", value: state.q });
    search.addEventListener("input", () => { state.q = search.value; list(); });
    const exportButton = el("button", { id: "export", onclick: exportChosen }, "Export chosen (Neuronpedia JSON)");
    const results = el("div", { id: "results" }), board = el("div", { id: "board" });
    main.append(el("p", { class: "sub" }, "Dashboards stored by investigations and SAE runs. Search by index, by explanation, "
      + "or by the tokens a feature fires on or promotes."),
    el("div", { class: "filters" }, el("label", {}, "SAE", select), el("label", {}, "search", search), exportButton),
    el("div", { class: "row" }, el("div", { style: { flex: "0 0 400px" } }, results), el("div", { class: "grow" }, board)));

    async function list() {
      const found = await api("/api/features" + MS.query({ source: state.source, q: state.q }));
      const rows = found.features.map((f) => el("tr", { class: "clickable", "data-feature": f.feature, onclick: (e) => {
        if (e.target.tagName !== "INPUT") open(f.feature);
      } }, el("td", {}, el("input", { type: "checkbox", checked: chosen.has(f.feature), "aria-label": `choose ${f.feature}`,
        onchange: (e) => (e.target.checked ? chosen.add(f.feature) : chosen.delete(f.feature)) })),
      el("td", { class: "num" }, `#${f.feature}`), el("td", { class: "num" }, MS.pct(f.density, 3)), el("td", { class: "num" }, fmt(f.max, 2)),
      el("td", {}, f.explanation || f.top_tokens.map(MS.visible).join(" "))));
      results.replaceChildren(el("p", { class: "note" }, `${found.features.length} features · ${found.hook_name} · ${fmt(found.n_tokens)} tokens`),
        el("table", {}, el("thead", {}, el("tr", {}, ["", "feature", "density", "max", "explanation / fires on"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows)));
      const listed = found.features.map((f) => f.feature);
      if (state.feature !== "" && listed.includes(+state.feature)) await open(+state.feature);
      else if (listed.length) await open(listed[0]);
    }

    async function open(feature) {
      state.feature = feature;
      history.replaceState(null, "", "/features" + MS.query({ source: state.source, feature, q: state.q }));
      try { drawBoard(board, await api(`/api/features/${feature}` + MS.query({ source: state.source }))); } catch (error) { board.replaceChildren(); MS.error(board, error); }
    }

    function exportChosen() {
      const features = chosen.size ? [...chosen] : [state.feature];
      location.href = "/api/features/export" + MS.query({ source: state.source, features: features.join(",") });
    }

    await list();
    MS.ready();
  }

  function drawBoard(box, data) {
    const b = data.board;
    MS.fill(box, el("h2", { id: "feature-title" }, `Feature #${b.feature}`),
      el("p", { class: "sub" }, `${data.model} · ${data.hook_name} · density ${MS.pct(b.density, 3)} · max ${fmt(b.max_activation, 3)} `
        + `· mean when active ${fmt(b.mean_activation, 3)}`), b.explanation ? el("p", {}, el("b", {}, "Explanation: "), b.explanation) : null);
    const top = el("div", { class: "row" });
    const hist = el("div", { class: "grow" }, el("h3", {}, "Activation histogram (non-zero)"));
    histogram(hist, b.histogram_edges, b.histogram_counts);
    const logits = el("div", { class: "grow" }, el("h3", {}, "Logit effects"));
    if (b.promoted.length) {
      MS.bars(logits, b.promoted.slice(0, 10).map(([t, v]) => ({ label: t, value: v })), { title: "promotes", left: 90, visible: true, width: 330 });
      MS.bars(logits, b.suppressed.slice(0, 10).map(([t, v]) => ({ label: t, value: v })), { title: "suppresses", left: 90, visible: true, width: 330 });
    } else logits.append(el("p", { class: "note" }, data.logits_note));
    top.append(hist, logits);
    box.append(top);
    box.append(el("h3", {}, "Top activations"), examples(b.top_examples, b.max_activation));
    b.quantiles.forEach((g) => box.append(el("h3", {}, `Activations ${fmt(g.low, 3)} to ${fmt(g.high, 3)} (${fmt(g.n_tokens)} tokens)`),
      examples(g.examples, b.max_activation)));
    if (b.neighbors.length) {
      box.append(el("h3", {}, "Nearest features (decoder cosine)"), el("p", {}, b.neighbors.map(([f, c], i) => [i ? ", " : "",
        el("a", { href: "/features" + MS.query({ source: data.source, feature: f }) }, `#${f}`), ` ${fmt(c, 2)}`])));
    }
  }

  function examples(list, max) {
    const box = el("div", { class: "examples" });
    if (!list.length) box.append(el("p", { class: "note" }, "none"));
    list.forEach((ex) => box.append(el("div", { class: "ex" }, MS.tokens(ex.tokens, ex.activations, { max, center: ex.center,
      title: (i, v) => `${JSON.stringify(ex.tokens[i])}: ${fmt(v, 3)}` }))));
    return box;
  }

  function histogram(container, edges, counts) {
    const w = 380, h = 170, m = { l: 40, b: 30, t: 6, r: 8 };
    const x = d3.scaleLinear().domain([edges[0], edges[edges.length - 1]]).range([m.l, w - m.r]);
    const y = d3.scaleLinear().domain([0, d3.max(counts) || 1]).nice().range([h - m.b, m.t]);
    const svg = d3.select(container).append("svg").attr("width", w).attr("height", h);
    svg.append("g").attr("transform", `translate(0,${h - m.b})`).call(d3.axisBottom(x).ticks(5));
    svg.append("g").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(y).ticks(4));
    svg.selectAll("rect").data(counts).join("rect").attr("x", (_, i) => x(edges[i]) + 0.5).attr("y", (d) => y(d))
      .attr("width", (_, i) => Math.max(1, x(edges[i + 1]) - x(edges[i]) - 1)).attr("height", (d) => y(0) - y(d)).attr("fill", "#ea580c")
      .on("mousemove", (event, d) => { const i = counts.indexOf(d); MS.tip.show(event, `${fmt(edges[i], 3)} to ${fmt(edges[i + 1], 3)}: ${d} tokens`); })
      .on("mouseleave", () => MS.tip.hide());
  }

  load().catch((error) => { MS.error(main, error); MS.ready(); });
})();
