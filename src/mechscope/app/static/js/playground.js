// Playground: type a prompt; see the next tokens, the logit lens, every head's attention and
// (with an SAE loaded) the features active on each token.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;

  function load() {
    const text = el("textarea", { id: "prompt", rows: 3, placeholder: "When Mary and John went to the store, John gave a drink to" });
    text.value = MS.data.prompt || "";
    const k = el("input", { id: "k", type: "number", min: 1, max: 50, value: 10, style: { width: "70px" } });
    const run = el("button", { id: "run" }, "Run");
    const out = el("div", { id: "out" });
    run.addEventListener("click", () => go(text.value, +k.value, out));
    text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run.click(); });
    main.replaceChildren(el("h1", {}, "Playground"), el("p", { class: "sub" }, "Type a prompt and run the model: next tokens, "
      + "the logit lens at every layer and position, attention, and SAE features (with --sae). Ctrl+Enter runs."),
    text, el("div", { class: "filters" }, el("label", {}, "top k", k), run), out);
    if (text.value) run.click();
    MS.ready();
  }

  async function go(prompt, k, out) {
    out.replaceChildren(el("p", { class: "loading" }, "Running the model…"));
    let result;
    try { result = await api("/api/playground", { method: "POST", body: { prompt, k } }); } catch (error) {
      out.replaceChildren(); MS.error(out, error); out.dataset.done = "error"; return;
    }
    history.replaceState(null, "", "/playground" + MS.query({ prompt }));
    const next = MS.card("Next token", "next");
    next.append(el("div", { class: "sub" }, `${result.model} · ${result.tokens.length} tokens:`), MS.tokens(result.tokens, null));
    next.append(el("table", { id: "top-k" }, el("thead", {}, el("tr", {}, ["rank", "token", "id", "probability", "logit", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, result.top.map((t, i) => el("tr", {}, el("td", { class: "num" }, i + 1), el("td", { class: "mono" }, JSON.stringify(t.token)),
        el("td", { class: "num" }, t.id), el("td", { class: "num" }, fmt(t.prob, 4)), el("td", { class: "num" }, fmt(t.logit, 2)),
        el("td", {}, el("span", { class: "bar", style: { width: `${Math.round(200 * t.prob)}px` } })))))));
    const lens = MS.card("Logit lens", "lens");
    lens.append(el("p", { class: "note" }, "The top token read from the residual stream before each block (rows) at each position (columns); "
      + "shade: its probability. Hover for the top tokens."), el("div", { class: "scroll" }, lensTable(result.lens)));
    const attention = MS.card("Attention", "attention");
    const grid = el("div", { class: "loading" }, "Loading…");
    attention.append(grid);
    out.replaceChildren(next, lens, attention);
    if (result.features.length) out.append(features(result));
    out.dataset.done = "1";
    MS.attentionGrid(grid, { prompt }).catch((error) => { grid.replaceChildren(); MS.error(grid, error); });
  }

  function lensTable(lens) {
    const colour = MS.sequential(1);
    const head = el("tr", {}, el("th", {}, ""), lens.tokens.map((t, i) => el("th", { class: "mono", title: `position ${i}` }, MS.visible(t))));
    const rows = lens.layers.map((label, r) => el("tr", {}, el("th", {}, label), lens.tokens.map((_, c) => {
      const p = lens.top_probs[r][c][0];
      const cell = el("td", { style: { background: colour(p * 0.8), color: p > 0.6 ? "white" : "#0f172a" } }, MS.visible(lens.top_tokens[r][c][0]).slice(0, 10));
      cell.addEventListener("mousemove", (e) => MS.tip.show(e, `${label} · position ${c} ${JSON.stringify(lens.tokens[c])}\n`
        + lens.top_tokens[r][c].map((t, i) => `${JSON.stringify(t)} ${fmt(lens.top_probs[r][c][i], 3)}`).join("\n")
        + `\nKL to the output ${fmt(lens.kl[r][c], 3)}`));
      cell.addEventListener("mouseleave", () => MS.tip.hide());
      return cell;
    })));
    return el("table", { class: "lens", id: "lens-table" }, el("thead", {}, head), el("tbody", {}, rows));
  }

  function features(result) {
    const card = MS.card("SAE features per token", "features");
    result.features.forEach((sae) => {
      const detail = el("div", { class: "panel" }, el("p", { class: "note" }, "Hover a token for its most active features."));
      const strength = sae.per_token.map((list) => (list.length ? list[0].activation : 0));
      card.append(el("h3", {}, `${sae.hook_name} (${fmt(sae.d_sae)} features)`), MS.tokens(result.tokens, strength, {
        title: (i) => sae.per_token[i].map((f) => `#${f.feature} ${fmt(f.activation, 3)}`).join("\n") || "no active feature",
        hover: (i) => detail.replaceChildren(el("b", {}, JSON.stringify(result.tokens[i])), MS.table(["feature", "activation"],
          sae.per_token[i].map((f) => [`#${f.feature}`, f.activation]), [1])) }), detail);
    });
    return card;
  }

  load();
})();
