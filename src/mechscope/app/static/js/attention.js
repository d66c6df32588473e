// Attention: choose a stored prompt (from an investigation) or type one; see every head's pattern.
"use strict";
(function () {
  const { el, api, main } = MS;
  const state = { run: MS.data.run || "", prompt: MS.data.prompt || "" };

  async function load() {
    const list = await api("/api/runs?command=investigate");
    const runSelect = el("select", { id: "run", onchange: () => { state.run = runSelect.value; loadPrompts(); } },
      el("option", { value: "" }, "— none: type a prompt —"),
      list.runs.map((r) => el("option", { value: r.id, selected: r.id === state.run }, `${r.id} · ${r.model} · ${r.task}`)));
    const promptSelect = el("select", { id: "stored-prompt", onchange: () => { text.value = promptSelect.value; } });
    const text = el("textarea", { id: "prompt", rows: 2, placeholder: "Type a prompt, e.g. When Mary and John went to the store, John gave a drink to" });
    text.value = state.prompt;
    const show = el("button", { id: "show", onclick: () => { state.prompt = text.value; draw(); } }, "Show attention");
    text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) show.click(); });
    const out = el("div", { id: "attention" });
    main.replaceChildren(el("h1", {}, "Attention"),
      el("p", { class: "sub" }, "Every head's pattern for one prompt (rows: layers; each square: query × key). "
        + "Rows load as they scroll into view. Heads are marked with their roles."),
      el("div", { class: "filters" }, el("label", {}, "stored run", runSelect), el("label", {}, "its prompts", promptSelect)),
      text, el("p", {}, show), out);

    async function loadPrompts() {
      promptSelect.replaceChildren();
      if (!state.run) return;
      const stored = await api(`/api/runs/${encodeURIComponent(state.run)}/prompts`);
      stored.prompts.forEach((p) => promptSelect.append(el("option", { value: p.text }, `${p.label}: ${p.text}`)));
      if (!text.value && stored.prompts.length) text.value = stored.prompts[0].text;
    }

    async function draw() {
      out.replaceChildren(el("p", { class: "loading" }, "Running the model…"));
      try {
        await MS.attentionGrid(out, { prompt: state.prompt, run: state.run }, { layer: MS.data.layer, head: MS.data.head });
        history.replaceState(null, "", "/attention" + MS.query({ run: state.run, prompt: state.prompt }));
      } catch (error) { out.replaceChildren(); MS.error(out, error); }
    }

    await loadPrompts();
    state.prompt = text.value;
    if (state.prompt) await draw();
    MS.ready();
  }

  load().catch((error) => { MS.error(main, error); MS.ready(); });
})();
