// Runs: every run in the store; filter by command, model, task and date; open, compare, delete.
"use strict";
(function () {
  const { el, api, fmt, main } = MS;
  const filters = { command: "", model: "", task: "", since: "" };
  const chosen = new Set();

  async function load() {
    const list = await api("/api/runs" + MS.query(filters));
    main.replaceChildren(header(list), filterBar(list.facets), table(list.runs));
    MS.ready();
  }

  function header(list) {
    return el("div", {}, el("h1", {}, "Runs"),
      el("p", { class: "sub" }, `${list.runs.length} of ${list.total} runs in ${MS.data.store}. `
        + "Record more with mechscope investigate (or patch, circuit, lens, heads, sae eval)."));
  }

  function filterBar(facets) {
    const bar = el("div", { class: "filters" });
    for (const name of ["command", "model", "task"]) {
      const select = el("select", { name, onchange: (e) => { filters[name] = e.target.value; load(); } },
        el("option", { value: "" }, "any"), facets[name].map((v) => el("option", { value: v, selected: filters[name] === v }, v)));
      bar.append(el("label", {}, name, select));
    }
    bar.append(el("label", {}, "started on or after",
      el("input", { type: "date", name: "since", value: filters.since, onchange: (e) => { filters.since = e.target.value; load(); } })));
    const compare = el("button", { id: "compare", disabled: chosen.size !== 2, onclick: () => {
      const [a, b] = [...chosen];
      location.href = "/compare" + MS.query({ a, b });
    } }, "Compare the two selected");
    bar.append(compare);
    return bar;
  }

  function headline(run) {
    const s = run.summary || {};
    if (run.status === "refused" || run.status === "failed") return el("span", { class: "note" }, run.error.slice(0, 140));
    const parts = [];
    if (s.f !== undefined) parts.push(`f ${fmt(s.f, 2)} (held out ${fmt(s.f_heldout, 2)})`);
    if (s.circuit_edges !== undefined) parts.push(`${fmt(s.circuit_edges)} edges`);
    if (s.clean_accuracy !== undefined) parts.push(`accuracy ${MS.pct(s.clean_accuracy, 0)}`);
    if (s.top_heads) parts.push(`top ${s.top_heads.slice(0, 3).join(", ")}`);
    if (!parts.length) {
      const scalars = Object.entries(s).filter(([, v]) => v === null || typeof v !== "object");
      for (const [k, v] of scalars.slice(0, 3)) parts.push(`${k} ${fmt(v)}`);
    }
    return parts.join(" · ");
  }

  function table(runs) {
    if (!runs.length) return el("p", { class: "note" }, "No runs match. Run `mechscope investigate smollm2-135m --task ioi` to make one.");
    const rows = runs.map((run) => {
      const box = el("input", { type: "checkbox", checked: chosen.has(run.id), "aria-label": `select ${run.id}`,
        onchange: (e) => { e.target.checked ? chosen.add(run.id) : chosen.delete(run.id); document.getElementById("compare").disabled = chosen.size !== 2; } });
      const remove = el("button", { class: "danger", title: "delete this run", onclick: () => remove_(run) }, "delete");
      return el("tr", { "data-run": run.id }, el("td", {}, box), el("td", { class: "mono", style: { whiteSpace: "nowrap" } }, el("a", { href: `/runs/${run.id}` }, run.id)),
        el("td", {}, run.command), el("td", {}, run.model), el("td", {}, run.task || "—"),
        el("td", {}, el("span", { class: `badge ${run.status}` }, run.status)), el("td", {}, run.started_text),
        el("td", { class: "num" }, run.seconds === null ? "—" : fmt(run.seconds, 1)), el("td", {}, headline(run)), el("td", {}, remove));
    });
    return el("table", { id: "runs" }, el("thead", {}, el("tr", {}, ["", "run", "command", "model", "task", "status", "started", "seconds",
      "headline", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows));
  }

  async function remove_(run) {
    if (!confirm(`Delete run ${run.id} (${run.command} · ${run.model} · ${run.task}) and its stored results?`)) return;
    try {
      await api(`/api/runs/${encodeURIComponent(run.id)}`, { method: "DELETE" });
      chosen.delete(run.id);
      load();
    } catch (error) { MS.error(main, error); }
  }

  load().catch((error) => { main.replaceChildren(); MS.error(main, error); MS.ready(); });
})();
