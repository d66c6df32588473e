// Draws a node-level circuit (mechscope.circuits.view.NodeView as JSON) with d3: layers as rows
// (embeddings at the bottom, logits at the top), nodes sized by importance, edges blue where they
// carry the behaviour (negative score) and red where they work against it. Pan and zoom with d3.zoom.
"use strict";
(function () {
  const SUPPORTS = "#2563eb", OPPOSES = "#dc2626";

  MS.drawCircuit = function (container, view, options = {}) {
    const width = options.width || container.clientWidth || 900;
    const rows = [...new Set(view.nodes.map((n) => n.layer))].sort((a, b) => a - b);
    // Rows share the box's height (at least 24 px each; beyond that the drawing is scaled to fit, and zoom helps).
    const fit = options.height ? (options.height - 90) / Math.max(rows.length, 1) : 64;
    const rowH = options.rowHeight || Math.max(24, Math.min(64, fit));
    const shrink = Math.min(1, rowH / 52);
    const height = Math.max(300, rows.length * rowH + 90);
    const y = new Map(rows.map((layer, i) => [layer, 50 + (rows.length - 1 - i) * rowH]));
    const byRow = d3.group(view.nodes, (n) => n.layer);
    const xy = new Map();
    for (const [layer, members] of byRow) {
      members.sort((a, b) => a.column - b.column);
      const step = (Math.max(width, 700) - 160) / Math.max(members.length, 1);
      members.forEach((n, i) => xy.set(n.name, [130 + step * (i + 0.5), y.get(layer)]));
    }
    const inner = view.nodes.filter((n) => n.layer !== -1 && n.layer !== view.n_layers);
    const topNode = d3.max(inner, (n) => n.importance) || 1;
    const topEdge = d3.max(view.edges, (e) => Math.abs(e.score)) || 1;

    const svg = d3.select(container).append("svg").attr("width", "100%").attr("height", options.height || height)
      .attr("viewBox", `0 0 ${width} ${height}`);
    const world = svg.append("g");
    if (options.zoom !== false) {
      svg.call(d3.zoom().scaleExtent([0.3, 6]).on("zoom", (event) => world.attr("transform", event.transform)));
    }
    for (const layer of rows) {
      const label = layer === -1 ? "embed" : layer === view.n_layers ? "logits" : `layer ${layer}`;
      world.append("line").attr("x1", 80).attr("x2", Math.max(width, 700) - 10).attr("y1", y.get(layer)).attr("y2", y.get(layer)).attr("stroke", "#f1f5f9");
      world.append("text").attr("x", 8).attr("y", y.get(layer) + 4).attr("font-size", 11).attr("fill", "#64748b").text(label);
    }
    const edges = [...view.edges].sort((a, b) => Math.abs(a.score) - Math.abs(b.score));
    world.append("g").selectAll("path").data(edges).join("path")
      .attr("d", (e) => {
        const [x1, y1] = xy.get(e.sender), [x2, y2] = xy.get(e.receiver);
        const [bx, by] = y1 === y2 ? [(x1 + x2) / 2, y1 - 26] : [(x1 + x2) / 2 + (y1 - y2) * 0.15, (y1 + y2) / 2];
        return `M${x1},${y1} Q${bx},${by} ${x2},${y2}`;
      })
      .attr("fill", "none").attr("stroke", (e) => (e.score < 0 ? SUPPORTS : OPPOSES)).attr("stroke-opacity", 0.5)
      .attr("stroke-width", (e) => 0.8 + (6 * Math.abs(e.score)) / topEdge)
      .on("mousemove", (event, e) => MS.tip.show(event, `${e.sender} → ${e.receiver}${e.inputs ? ` <${e.inputs}>` : ""}: ${MS.fmt(e.score, 4)}`))
      .on("mouseleave", () => MS.tip.hide());
    const nodes = world.append("g").selectAll("g").data(view.nodes).join("g").attr("class", "node")
      .attr("data-node", (n) => n.name)
      .attr("transform", (n) => `translate(${xy.get(n.name)[0]},${xy.get(n.name)[1]})`)
      .on("mousemove", (event, n) => MS.tip.show(event, `${n.name}: importance ${MS.fmt(n.importance, 4)}${n.role ? `\n${n.role}` : ""}`))
      .on("mouseleave", () => MS.tip.hide())
      .on("click", (event, n) => {
        nodes.classed("selected", (m) => m === n);
        if (options.onClick) options.onClick(n);
      });
    const radius = (n) => shrink * (n.layer === -1 || n.layer === view.n_layers ? 13 : 7 + 13 * Math.sqrt(n.importance / topNode));
    nodes.append("circle").attr("r", radius).attr("stroke", "#334155")
      .attr("fill", (n) => (n.layer === -1 || n.layer === view.n_layers ? "#e2e8f0" : n.name.startsWith("MLP") ? "#fef3c7" : "#e0f2fe"));
    nodes.append("text").attr("y", 3.5).attr("text-anchor", "middle").attr("font-size", Math.max(8, 10 * shrink)).attr("pointer-events", "none").text((n) => n.name);
    nodes.filter((n) => n.role).append("text").attr("y", (n) => radius(n) + 11).attr("text-anchor", "middle").attr("font-size", 9.5)
      .attr("fill", "#7c2d12").attr("pointer-events", "none").text((n) => n.role);
    const legend = svg.append("g").attr("font-size", 11).attr("transform", `translate(${width - 330},${height - 14})`);
    legend.append("line").attr("x2", 24).attr("stroke", SUPPORTS).attr("stroke-width", 4);
    legend.append("text").attr("x", 30).attr("y", 4).text("carries the behaviour");
    legend.append("line").attr("x1", 165).attr("x2", 189).attr("stroke", OPPOSES).attr("stroke-width", 4);
    legend.append("text").attr("x", 195).attr("y", 4).text("works against it");
    return svg.node();
  };

  MS.circuitCaption = function (view) {
    const hidden = [];
    if (view.hidden_nodes) hidden.push(`${view.hidden_nodes} less important nodes`);
    if (view.hidden_edges) hidden.push(`${view.hidden_edges} weaker connections`);
    return `${MS.fmt(view.n_circuit_edges)} of ${MS.fmt(view.n_graph_edges)} edges (${MS.pct(view.n_circuit_edges / view.n_graph_edges, 2)}); `
      + `${view.nodes.length} nodes and ${view.edges.length} strongest connections shown`
      + (hidden.length ? `; left out: ${hidden.join(", ")}` : "") + ". Node size: importance (sum of |edge score|). Drag to pan, scroll to zoom.";
  };
})();
