// Run: one run of any command (record, options, stages as JSON, files); an investigation also gets
// its report, live: every figure answers hover with its values, and a click on a head opens its attention.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;
  const runId = MS.data.run;
  const ROLE_SCORES = ["previous_token", "duplicate_token", "induction", "copying", "copy_suppression", "successor"];

  const attentionUrl = (layer, head) => "/attention" + MS.query({ run: runId, layer, head });
  const openHead = (layer, head) => { location.href = attentionUrl(layer, head); };

  async function load() {
    const detail = await api(`/api/runs/${encodeURIComponent(runId)}`);
    MS.fill(main, header(detail));
    if (detail.command === "investigate") {
      const inv = await api(`/api/runs/${encodeURIComponent(runId)}/investigation`);
      const seconds = Object.fromEntries(detail.stages.map((s) => [s.name, s.seconds]));
      main.append(summary(inv), behaviour(inv, seconds), split(inv, seconds));
      if (inv.where) main.append(where(inv.where, seconds.where));
      if (inv.who) main.append(who(inv.who, seconds.who));
      if (inv.circuit) main.append(circuit(inv.circuit, seconds.circuit));
      if (inv.features) main.append(features(inv.features, seconds.features));
    }
    main.append(record(detail));
    MS.ready();
  }

  function header(d) {
    const links = [el("a", { href: "/" }, "← all runs")];
    if (d.stages.some((s) => s.name === "circuit")) links.push(el("a", { href: `/runs/${runId}/circuit` }, "Circuit explorer"));
    if (d.command === "investigate") links.push(el("a", { href: "/attention" + MS.query({ run: runId }) }, "Attention on its prompts"));
    links.push(el("a", { href: "/compare" + MS.query({ a: runId }) }, "Compare with…"));
    return el("div", {}, el("h1", {}, `${d.model} · ${d.task || d.command}`),
      el("p", { class: "sub" }, `${d.command} · run ${d.id} · `, el("span", { class: `badge ${d.status}` }, d.status),
        ` · started ${d.started_text}` + (d.seconds !== null ? ` · ${fmt(d.seconds, 1)} s` : "") + ` · mechscope ${d.version}`),
      el("p", { class: "sub" }, links.flatMap((a, i) => (i ? [" · ", a] : [a]))),
      d.error ? el("p", { class: d.status === "refused" ? "refusal" : "error" }, d.error) : null);
  }

  function summary(inv) {
    const card = MS.card("Summary", "summary");
    const s = inv.summary;
    if (!s) return card;
    card.append(el("ul", { class: "claims" }, s.claims.map((c) => el("li", {}, c.text, " ", el("a", { href: `#${c.section}` }, "evidence")))));
    if (s.caveats.length) {
      card.append(el("h3", {}, "Caveats"));
      s.caveats.forEach((c) => card.append(el("div", { class: "caveat" }, "⚠ ", c.text, " ", el("a", { href: `#${c.section}` }, "see"))));
    }
    return card;
  }

  function behaviour(inv, seconds) {
    const card = MS.card("1. Behaviour", "behaviour", seconds.behaviour);
    const b = inv.behaviour;
    const rows = [["discovery", b.discovery], ["held out", b.heldout]].map(([side, r]) =>
      [side, r.n, MS.pct(r.clean_accuracy), MS.pct(r.margin_accuracy), r.clean_metric, r.corrupt_metric]);
    card.append(MS.table(["prompts", "n", "clean accuracy", "answer beats wrong", "logit diff clean", "logit diff corrupted"], rows, [1, 2, 3, 4, 5]));
    card.append(el("p", { class: "note" }, `The investigation stops unless the answer is the top token on at least ${MS.pct(b.min_accuracy, 0)} `
      + `of discovery prompts and the corruption lowers the logit difference by at least ${fmt(b.min_gap, 2)}.`));
    if (b.refusal) card.append(el("p", { class: "refusal" }, "Stopped: ", b.refusal));
    return card;
  }

  function split(inv, seconds) {
    const card = MS.card("2. Discovery and held-out prompts", "split", seconds.split);
    const s = inv.split;
    if (!s) return card;
    card.append(el("p", {}, `${s.how}: ${s.n_discovery} discovery and ${s.n_heldout} held-out prompt pairs, ${s.shared_prompts} clean prompts in common.`));
    for (const [title, pairs] of [["Discovery examples", s.discovery_examples], ["Held-out examples", s.heldout_examples]]) {
      card.append(el("h3", {}, title));
      card.append(MS.table(["clean", "corrupted"], pairs.map(([a, b]) => [el("span", { class: "prompt" }, a), el("span", { class: "prompt" }, b)])));
    }
    return card;
  }

  function effects(p) { return p.values.map((row) => (Array.isArray(row) ? row.map((v) => v - p.base_value) : row - p.base_value)); }

  function where(w, seconds) {
    const card = MS.card("3. Where the behaviour lives", "where", seconds);
    // logit lens
    const lens = w.lens;
    const probs = lens.answer_probs || lens.top_probs.map((layer) => layer.map((pos) => pos[0]));
    const lensBox = el("div", { class: "grow" }, el("h3", {}, "Logit lens (first discovery prompt)"));
    MS.heatmap(lensBox, probs, { rowLabels: lens.layer_labels, colLabels: lens.tokens, centered: false, max: 1,
      marks: Object.fromEntries(lens.top_tokens.flatMap((layer, r) => layer.map((pos, c) => [`${r},${c}`, MS.visible(pos[0]).slice(0, 4)]))),
      hover: (r, c, v) => `${lens.layer_labels[r]} · position ${c} ${JSON.stringify(lens.tokens[c])}\n`
        + (lens.answer ? `p(${JSON.stringify(lens.answer)}) = ${fmt(v, 4)}, rank ${lens.answer_ranks[r][c]}\n` : "")
        + "top: " + lens.top_tokens[r][c].map((t, i) => `${JSON.stringify(t)} ${fmt(lens.top_probs[r][c][i], 3)}`).join(", ") });
    lensBox.append(el("p", { class: "note" }, lens.answer ? `Colour: probability of ${JSON.stringify(lens.answer)}; text: the lens's top token.` : "Colour: the top token's probability."));
    // DLA
    const dla = w.dla;
    const dlaBox = el("div", { class: "grow" }, el("h3", {}, "Direct logit attribution (click a head)"));
    MS.heatmap(dlaBox, dla.heads, { rowLabels: dla.heads.map((_, l) => `L${l}`), colLabels: dla.heads[0].map((_, h) => `H${h}`),
      hover: (r, c, v) => `L${r}H${c}: ${fmt(v, 4)} of the logit difference ${fmt(dla.total, 3)}`, click: openHead });
    const parts = dla.mlps.map((v, l) => ({ label: `MLP${l}`, value: v }))
      .concat(dla.heads.flatMap((row, l) => row.map((v, h) => ({ label: `L${l}H${h}`, value: v }))))
      .concat([{ label: "embed", value: dla.embed }]).sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, 12);
    MS.bars(dlaBox, parts, { title: "largest direct contributions", width: 380, left: 70 });
    card.append(el("div", { class: "row" }, lensBox, dlaBox));
    // residual patching
    const resid = w.resid;
    const residBox = el("div", {}, el("h3", {}, "Residual stream patching (denoising), layer × position"));
    MS.heatmap(residBox, effects(resid), { rowLabels: resid.layers.map((l) => `L${l}`),
      colLabels: resid.positions.map((p) => resid.tokens[p]),
      hover: (r, c, v) => `restore the clean residual at L${resid.layers[r]}, position ${resid.positions[c]} `
        + `${JSON.stringify(resid.tokens[resid.positions[c]])}\nΔ ${resid.metric} = ${fmt(v, 4)} (clean − corrupted = ${fmt(resid.source_value - resid.base_value, 3)})` });
    card.append(residBox);
    // heads: exact and AtP*
    const exact = w.exact, atp = w.atp;
    const headBox = el("div", { class: "grow" }, el("h3", {}, `Exact head patching, layers ${exact.layers.join(", ")} (click a head)`));
    MS.heatmap(headBox, effects(exact), { rowLabels: exact.layers.map((l) => `L${l}`), colLabels: exact.values[0].map((_, h) => `H${h}`),
      hover: (r, c, v) => `L${exact.layers[r]}H${c}: restoring it alone changes ${exact.metric} by ${fmt(v, 4)}`,
      click: (r, c) => openHead(exact.layers[r], c) });
    const atpBox = el("div", { class: "grow" }, el("h3", {}, "AtP* estimate, every head (click a head)"));
    MS.heatmap(atpBox, effects(atp), { rowLabels: atp.layers.map((l) => `L${l}`), colLabels: atp.values[0].map((_, h) => `H${h}`),
      hover: (r, c, v) => `L${atp.layers[r]}H${c}: estimated Δ ${atp.metric} ${fmt(v, 4)}`, click: (r, c) => openHead(atp.layers[r], c) });
    card.append(el("div", { class: "row" }, headBox, atpBox));
    const a = w.agreement;
    const scatterBox = el("div", { class: "grow" }, el("h3", {}, "AtP* against exact patching"));
    scatter(scatterBox, a.cells.map((name, i) => ({ name, x: a.exact_effects[i], y: a.estimated_effects[i] })));
    scatterBox.append(el("p", { class: "note" }, `${a.n_cells} heads: Pearson ${fmt(a.pearson, 2)}, Spearman ${fmt(a.spearman, 2)}, `
      + `${MS.pct(a.top_overlap, 0)} of the top ${a.k} shared.`));
    const top = w.top_heads.map((h) => {
      const [layer, head] = h.slice(1).split("H").map(Number);
      return [el("a", { href: attentionUrl(layer, head) }, h), w.head_effects[h]];
    });
    card.append(el("div", { class: "row" }, scatterBox, el("div", { class: "grow" }, el("h3", {}, "Top heads (exact effect)"),
      MS.table(["head", "exact effect"], top, [1]))));
    return card;
  }

  function scatter(container, points) {
    const w = 380, h = 260, m = 48;
    const lim = d3.max(points, (p) => Math.max(Math.abs(p.x), Math.abs(p.y))) || 1;
    const x = d3.scaleLinear().domain([-lim, lim]).range([m, w - 10]), y = d3.scaleLinear().domain([-lim, lim]).range([h - m, 10]);
    const svg = d3.select(container).append("svg").attr("width", w).attr("height", h);
    svg.append("g").attr("transform", `translate(0,${h - m})`).call(d3.axisBottom(x).ticks(5));
    svg.append("g").attr("transform", `translate(${m},0)`).call(d3.axisLeft(y).ticks(5));
    svg.append("line").attr("x1", x(-lim)).attr("y1", y(-lim)).attr("x2", x(lim)).attr("y2", y(lim)).attr("stroke", "#cbd5e1");
    svg.append("text").attr("x", w / 2).attr("y", h - 6).attr("font-size", 11).attr("text-anchor", "middle").text("exact effect");
    svg.append("text").attr("transform", `translate(10,${h / 2}) rotate(-90)`).attr("font-size", 11).attr("text-anchor", "middle").text("AtP* estimate");
    svg.selectAll("circle").data(points).join("circle").attr("cx", (p) => x(p.x)).attr("cy", (p) => y(p.y)).attr("r", 4)
      .attr("fill", "#2563eb").attr("opacity", 0.7)
      .on("mousemove", (event, p) => MS.tip.show(event, `${p.name}: exact ${fmt(p.x, 4)}, AtP* ${fmt(p.y, 4)}`)).on("mouseleave", () => MS.tip.hide());
  }

  function who(w, seconds) {
    const card = MS.card("4. What the top heads do", "who", seconds);
    const roles = w.roles, movers = w.movers;
    const grids = Object.fromEntries(ROLE_SCORES.map((s) => [s, roles[s]]));
    if (movers.n_prompts) { grids["attends to the answer (task)"] = movers.attention; grids["copies the answer (task)"] = movers.copying; }
    const box = el("div");
    const select = el("select", { id: "role-score", onchange: () => draw(select.value) },
      Object.keys(grids).map((name) => el("option", { value: name }, name.replace(/_/g, " "))));
    const draw = (name) => {
      box.replaceChildren();
      const base = roles.baselines[name];
      MS.heatmap(box, grids[name].map((row) => row.map((v) => (v === "nan" || v === "NaN" ? NaN : v))), {
        rowLabels: grids[name].map((_, l) => `L${l}`), colLabels: grids[name][0].map((_, h) => `H${h}`), centered: false, max: 1,
        hover: (r, c, v) => `L${r}H${c}: ${name.replace(/_/g, " ")} ${fmt(v, 3)}` + (base !== undefined ? ` (no-role baseline ${fmt(base, 3)})` : ""),
        click: openHead });
    };
    const side = el("div", { class: "grow" });
    card.append(el("div", { class: "row" }, el("div", {}, el("div", { class: "filters" }, el("label", {}, "score", select)), box), side));
    draw(select.value);
    const rows = Object.entries(w.labels).map(([head, found]) => {
      const [layer, index] = head.slice(1).split("H").map(Number);
      return [el("a", { href: attentionUrl(layer, index) }, head),
        el("span", {}, found.length ? found.map(([role, score]) => el("span", { class: "badge role" }, `${role} ${fmt(score, 2)}`)) : "—")];
    });
    side.append(el("h3", {}, "Roles of the top heads"), MS.table(["head", "clear roles (score)"], rows));
    side.append(el("p", { class: "note" }, `Role scores on ${roles.n_seqs} repeated random sequences of ${roles.seq_len} tokens; `
      + `mover scores on ${movers.n_prompts} discovery prompts. Click a head for its attention.`));
    return card;
  }

  function circuit(c, seconds) {
    const card = MS.card("5. The circuit", "circuit", seconds);
    const check = c.check;
    const figure = el("div", { class: "grow" });
    MS.lines(figure, [{ label: `${c.curve.absolute ? "|score|" : "signed score"}, ${c.curve.selection}`, x: c.curve.budgets, y: c.curve.faithfulness }],
    { xlog: true, band: [0.8, 1.2], xlabel: "fraction of edges kept", ylabel: "faithfulness f", title: `faithfulness by budget (${c.tolerance != null ? `the circuit: |1 − f| ≤ ${c.tolerance}` : `target f ≥ ${c.target_f}`})`,
      marks: [{ label: "chosen circuit, discovery", x: check.fraction, y: check.f_discovery },
        { label: "chosen circuit, held out", x: check.fraction, y: check.f_heldout }] });
    const numbers = MS.table(["measure", "value"], [["faithfulness f, discovery", check.f_discovery], ["faithfulness f, held out", check.f_heldout],
      ["complement f(N∖C)", check.complement_f], ["edges", check.n_edges], ["fraction of the graph", MS.pct(check.fraction, 2)],
      ["CPR (area under f)", c.curve.cpr], ["CMD (area under |1 − f|)", c.curve.cmd],
      ["scores", `${c.method}, ${c.ablation} ablation`]], [1]);
    card.append(el("div", { class: "row" }, figure, el("div", { class: "grow" }, numbers,
      el("p", {}, el("a", { href: `/runs/${runId}/circuit` }, "Open the Circuit explorer →"), " (pan, zoom, budgets, node details)"))));
    const graph = el("div", { class: "circuit-box", style: { height: "auto" } });
    card.append(el("h3", {}, c.view.title), graph, el("p", { class: "note" }, MS.circuitCaption(c.view)));
    MS.drawCircuit(graph, c.view, { zoom: false, width: 1140, rowHeight: 52,
      onClick: (n) => { const m = /^L(\d+)H(\d+)$/.exec(n.name); if (m) openHead(+m[1], +m[2]); } });
    const minimal = Object.entries(check.minimality).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    card.append(el("h3", {}, "Minimality: share of the effect lost without each edge"), MS.table(["edge", "share lost"], minimal, [1]));
    return card;
  }

  function features(saes, seconds) {
    const card = MS.card("6. Features", "features", seconds);
    saes.forEach((sae) => {
      const source = `${runId}:features:${sae.index}`;
      card.append(el("h3", {}, `${sae.hook_name} (${sae.path})`));
      const box = el("div");
      MS.bars(box, sae.top.slice(0, 12).map(([f, v]) => ({ label: `#${f}`, value: v })), { title: "attribution (gradient × activation)", left: 60 });
      card.append(box, el("p", {}, "Dashboards: ", sae.dashboards.map((b, i) => [i ? ", " : "",
        el("a", { href: "/features" + MS.query({ source, feature: b.feature }) }, `#${b.feature}`)])));
    });
    return card;
  }

  function record(d) {
    const card = MS.card("Record, stages and files", "record");
    card.append(el("h3", {}, "Options"), MS.table(["option", "value"], Object.entries(d.options).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v])));
    card.append(el("p", { class: "note" }, `model weights ${d.model_hash.slice(0, 16)}…` + (d.task_hash ? ` · task ${d.task_hash.slice(0, 16)}…` : "")
      + ` · seeds ${JSON.stringify(d.seeds)}`));
    card.append(el("h3", {}, "Stages (click to see the stored values as JSON)"));
    d.stages.forEach((s) => {
      const details = el("details", { class: "json", "data-stage": s.name });
      details.append(el("summary", {}, `${s.name} · ${s.type} · ${fmt(s.seconds, 2)} s${s.cached ? " (from the store)" : ""}`));
      details.addEventListener("toggle", async () => {
        if (!details.open || details.dataset.loaded) return;
        details.dataset.loaded = "1";
        try {
          const stage = await api(`/api/runs/${encodeURIComponent(runId)}/stages/${encodeURIComponent(s.name)}`);
          details.append(MS.jsonTree(stage.value));
        } catch (error) { MS.error(details, error); }
      });
      card.append(details);
    });
    if (d.artifacts.length) {
      card.append(el("h3", {}, "Files"));
      d.artifacts.forEach((a) => {
        card.append(el("div", {}, el("a", { href: a.url }, a.name)));
        if (/\.(png|svg)$/i.test(a.name)) card.append(el("img", { src: a.url, alt: a.name, style: { maxWidth: "100%" } }));
      });
    }
    return card;
  }

  load().catch((error) => { MS.error(main, error); MS.ready(); });
})();
