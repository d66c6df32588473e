// Compare: two runs side by side, rows that differ highlighted; two investigations also overlay
// their faithfulness curves and mark the top heads they share.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;

  async function load() {
    const list = await api("/api/runs");
    const pick = (name, value) => el("select", { id: `run-${name}`, onchange: go },
      el("option", { value: "" }, "— choose a run —"),
      list.runs.map((r) => el("option", { value: r.id, selected: r.id === value }, `${r.id} · ${r.command} · ${r.model} · ${r.task}`)));
    const a = pick("a", MS.data.a), b = pick("b", MS.data.b);
    function go() { if (a.value && b.value) location.href = "/compare" + MS.query({ a: a.value, b: b.value }); }
    main.replaceChildren(el("h1", {}, "Compare"), el("p", { class: "sub" }, "Two runs side by side: two models on one task, "
      + "or one model with two methods or budgets. Rows that differ are highlighted."),
    el("div", { class: "filters" }, el("label", {}, "A", a), el("label", {}, "B", b)));
    if (MS.data.a && MS.data.b) main.append(await comparison(MS.data.a, MS.data.b));
    MS.ready();
  }

  async function comparison(a, b) {
    const c = await api("/api/compare" + MS.query({ a, b }));
    const box = el("div");
    const head = el("tr", {}, ["", "", el("a", { href: `/runs/${a}` }, `A: ${c.a.model} · ${c.a.task || c.a.command}`),
      el("a", { href: `/runs/${b}` }, `B: ${c.b.model} · ${c.b.task || c.b.command}`), "B − A"].map((h) => el("th", {}, h)));
    const shown = (v) => {
      if (v === null || v === undefined) return "—";
      if (typeof v !== "object") return fmt(v);
      const text = JSON.stringify(v, (k, x) => (typeof x === "number" ? Number(x.toPrecision(4)) : x));
      return text.length > 200 ? `${text.slice(0, 200)}…` : text;
    };
    const rows = c.rows.map((r) => el("tr", { class: r.differs ? "differs" : null, "data-row": r.name },
      el("td", { class: "note" }, r.section), el("td", {}, r.name), el("td", { class: "mono" }, shown(r.a)), el("td", { class: "mono" }, shown(r.b)),
      el("td", { class: "num" }, r.delta === null || r.delta === undefined ? "" : (r.delta > 0 ? "+" : "") + fmt(r.delta))));
    const card = MS.card("Side by side", "rows");
    card.append(el("table", { id: "compare-table" }, el("thead", {}, head), el("tbody", {}, rows)));
    box.append(card);
    if (c.curves && c.curves.a) {
      const curves = MS.card("Faithfulness curves", "curves");
      const series = [];
      for (const side of ["a", "b"]) {
        c.curves[side].forEach((s) => series.push({ label: `${side.toUpperCase()}: ${s.label}`, x: s.budgets, y: s.f }));
      }
      const figure = el("div");
      MS.lines(figure, series, { xlog: true, band: [0.8, 1.2], xlabel: "fraction of edges kept", ylabel: "faithfulness f", width: 700 });
      curves.append(figure);
      const heads = (side) => el("div", { class: "grow" }, el("h3", {}, `${side.toUpperCase()}: top heads`),
        el("p", {}, c.top_heads[side].map((h) => el("span", { class: h.shared ? "badge shared" : "badge", style: { marginRight: "4px" } }, h.head))));
      curves.append(el("div", { class: "row" }, heads("a"), heads("b")), el("p", { class: "note" }, "Green: heads both runs rank among their top."));
      box.append(curves);
      const claims = MS.card("Claims", "claims");
      claims.append(el("div", { class: "row" }, ["a", "b"].map((side) => el("div", { class: "grow" }, el("h3", {}, side.toUpperCase()),
        el("ul", { class: "claims" }, c.claims[side].map((t) => el("li", {}, t)))))));
      box.append(claims);
    }
    return box;
  }

  load().catch((error) => { MS.error(main, error); MS.ready(); });
})();
