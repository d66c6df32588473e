// Circuit explorer: the investigation's node-level circuit, pan and zoom; a budget slider over the
// budgets where f was measured; click a node for its role, DLA, patching effect, pattern and features.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;
  const runId = MS.data.run;
  let inv = null;

  async function load() {
    const [investigation, first] = await Promise.all([api(`/api/runs/${encodeURIComponent(runId)}/investigation`),
      api(`/api/runs/${encodeURIComponent(runId)}/circuit`)]);
    inv = investigation;
    const stops = first.stops;
    const slider = el("input", { type: "range", id: "budget", min: 0, max: stops.length - 1, step: 1,
      value: stops.findIndex((s) => s.chosen) });
    const readout = el("span", { id: "budget-readout", class: "big" });
    const box = el("div", { class: "circuit-box", id: "circuit" });
    const panel = el("div", { class: "panel", id: "node-panel" }, el("p", { class: "note" }, "Click a node for what is known about it."));
    const caption = el("p", { class: "note", id: "circuit-caption" });
    main.replaceChildren(el("h1", {}, `Circuit · ${inv.run.model} · ${inv.run.task}`),
      el("p", { class: "sub" }, el("a", { href: `/runs/${runId}` }, "← the run's report"),
        ` · scores ${inv.circuit.method}, ${inv.circuit.ablation} ablation · ${fmt(inv.circuit.n_graph_edges)} edges in the graph`),
      el("div", { class: "slider" }, el("label", {}, "budget "), slider, readout),
      el("p", { class: "note" }, "The slider stops where f was measured (the faithfulness curve's budgets and the chosen circuit); "
        + "each stop redraws the circuit from the stored edge scores, chosen as the curve chose them."),
      el("div", { class: "split" }, el("div", {}, box, caption), panel));
    let current = first;
    const draw = (data) => {
      current = data;
      const s = data.stop;
      readout.textContent = `${s.label}: ${fmt(data.n_edges)} edges · f = ${fmt(s.f, 2)}` + (s.f_heldout !== undefined ? ` (held out ${fmt(s.f_heldout, 2)})` : "");
      box.replaceChildren();
      MS.drawCircuit(box, data.view, { height: 816, onClick: (n) => showNode(panel, n) });
      caption.textContent = MS.circuitCaption(data.view);
    };
    slider.addEventListener("input", async () => {
      const stop = stops[+slider.value];
      readout.textContent = `${stop.label}: drawing…`;
      try { draw(await api(`/api/runs/${encodeURIComponent(runId)}/circuit` + MS.query({ edges: stop.edges }))); } catch (error) { MS.error(panel, error); }
      main.dataset.edges = current.n_edges;
    });
    draw(first);
    main.dataset.edges = first.n_edges;
    MS.ready();
  }

  function headIndex(name) { const m = /^L(\d+)H(\d+)$/.exec(name); return m ? [+m[1], +m[2]] : null; }

  function showNode(panel, node) {
    panel.replaceChildren(el("h3", {}, node.name), el("p", {}, `importance ${fmt(node.importance, 4)} (sum of |edge score| in the circuit)`));
    if (node.role) panel.append(el("p", {}, el("span", { class: "badge role" }, node.role)));
    const rows = [];
    const head = headIndex(node.name), mlp = /^MLP(\d+)$/.exec(node.name);
    const w = inv.where, who = inv.who;
    if (w && head) {
      rows.push(["direct logit attribution", w.dla.heads[head[0]][head[1]]]);
      const li = w.exact.layers.indexOf(head[0]);
      if (li >= 0) rows.push(["exact patching effect", w.exact.values[li][head[1]] - w.exact.base_value]);
      const ai = w.atp.layers.indexOf(head[0]);
      if (ai >= 0) rows.push(["AtP* estimate", w.atp.values[ai][head[1]] - w.atp.base_value]);
    }
    if (w && mlp) rows.push(["direct logit attribution", w.dla.mlps[+mlp[1]]]);
    if (who && head) {
      for (const score of ["previous_token", "duplicate_token", "induction", "copying", "copy_suppression", "successor"]) {
        rows.push([`${score.replace(/_/g, " ")} score`, who.roles[score][head[0]][head[1]]]);
      }
      if (who.movers.n_prompts) rows.push(["attends to the answer", who.movers.attention[head[0]][head[1]]]);
    }
    panel.append(MS.table(["", "value"], rows, [1]));
    const layer = head ? head[0] : mlp ? +mlp[1] : null;
    const saes = (inv.features || []).filter((s) => layer !== null && s.hook_name.startsWith(`blocks.${layer}.`));
    if (saes.length) {
      panel.append(el("h3", {}, "Top features at this layer"));
      saes.forEach((s) => panel.append(el("p", {}, `${s.hook_name}: `, s.top.slice(0, 5).map(([f, v], i) => [i ? ", " : "",
        el("a", { href: "/features" + MS.query({ source: `${runId}:features:${s.index}`, feature: f }) }, `#${f}`), ` (${fmt(v, 2)})`]))));
    } else if (layer !== null) {
      panel.append(el("p", { class: "note" }, "No SAE of this investigation reads this layer."));
    }
    if (head) {
      const patternBox = el("div");
      panel.append(el("h3", {}, "Pattern"), el("p", {}, el("a", { href: "/attention" + MS.query({ run: runId, layer: head[0], head: head[1] }) }, "open in Attention"), " · ",
        el("button", { class: "secondary", id: "show-pattern", onclick: () => showPattern(patternBox, head) }, "show on the first prompt")), patternBox);
    }
  }

  async function showPattern(box, [layer, head]) {
    box.replaceChildren(el("p", { class: "loading" }, "Running the model…"));
    try {
      const stored = await api(`/api/runs/${encodeURIComponent(runId)}/prompts`);
      const prompt = stored.prompts[0].text;
      const info = await api("/api/attention" + MS.query({ prompt, run: runId }));
      const layerData = await api(`/api/attention/layer/${layer}` + MS.query({ prompt, run: runId }));
      box.replaceChildren();
      MS.heatmap(box, layerData.patterns[head], { rowLabels: info.tokens.map((t) => MS.visible(t).slice(0, 10)), colLabels: info.tokens,
        centered: false, max: 1, cell: 12, hover: (q, k, v) => `${JSON.stringify(info.tokens[q])} → ${JSON.stringify(info.tokens[k])}: ${fmt(v, 3)}` });
    } catch (error) { box.replaceChildren(); MS.error(box, error); }
  }

  load().catch((error) => { MS.error(main, error); MS.ready(); });
})();
