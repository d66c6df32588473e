"""The investigation report: one self-contained HTML page, sections in the order of the stages.

::

    html = render_investigation(found, command="mechscope investigate smollm2-135m --task ioi")
    Path("report.html").write_text(html)

Each section shows its wall time, its figures (inline) and its numbers; the summary at
the top links each claim to the section that backs it and lists the caveats. Every
prompt, token and model name is escaped.
"""

from __future__ import annotations

import time
import warnings

from mechscope.report.html import inline_svg, number, page, png, section, table, text

TITLES = {"summary": "Summary", "behaviour": "1. Behaviour", "split": "2. Discovery and held-out prompts",
          "where": "3. Where the behaviour lives", "who": "4. What the top heads do", "circuit": "5. The circuit",
          "features": "6. Features"}


def render_investigation(found, *, command: str = "") -> str:
    """The report of an :class:`~mechscope.investigate.Investigation` as HTML text."""
    with warnings.catch_warnings():
        # tokens from any script: a glyph the font lacks is drawn as a box, no need to warn
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        parts = [_summary(found), _stage(found, "behaviour", _behaviour(found)), _stage(found, "split", _split(found))]
        if found.where is not None:
            parts.append(_stage(found, "where", _where(found.where)))
        if found.who is not None:
            parts.append(_stage(found, "who", _who(found.who, found.where)))
        if found.circuit is not None:
            parts.append(_stage(found, "circuit", _circuit(found.circuit)))
        if found.features is not None:
            parts.append(_stage(found, "features", _features(found.features)))
    total = sum(found.seconds.values())
    header = (f"<h1>{text(found.model_name)} · {text(found.task_name)}</h1>"
              f"<p>mechscope investigation{' · run ' + text(found.run_id) if found.run_id else ''} · "
              f"{time.strftime('%Y-%m-%d %H:%M')} · {total:.0f} s of computation"
              f"{' (' + str(len(found.cached)) + ' stages from the results store)' if found.cached else ''}</p>"
              + (f'<p class="prompt">{text(command)}</p>' if command else ""))
    nav = [(a, TITLES[a]) for a in TITLES if a == "summary" or getattr(found, a, None) is not None]
    return page(f"{found.model_name} · {found.task_name} · mechscope", header, nav, "".join(parts))


def _stage(found, name: str, body: str) -> str:
    return section(name, TITLES[name], body, found.seconds.get(name), name in found.cached)


def _summary(found) -> str:
    summary = found.summary
    claims = "".join(f'<li>{text(c.text)} <a href="#{text(c.section)}">evidence</a></li>' for c in summary.claims)
    caveats = "".join(f'<div class="caveat">⚠ {text(c.text)} <a href="#{text(c.section)}">see</a></div>'
                      for c in summary.caveats)
    body = f'<ul class="claims">{claims}</ul>' + (f"<h3>Caveats</h3>{caveats}" if caveats else "")
    return section("summary", "Summary", body)


def _behaviour(found) -> str:
    b = found.behaviour
    rows = [(side, r.n, r.clean_accuracy, r.margin_accuracy, r.clean_metric, r.corrupt_metric)
            for side, r in (("discovery", b.discovery), ("held out", b.heldout))]
    body = table(("prompts", "n", "clean accuracy", "answer beats wrong", "logit diff clean", "logit diff corrupted"),
                 rows, numeric=(1, 2, 3, 4, 5))
    body += (f'<p class="muted">The investigation stops unless the answer is the top token on at least '
             f"{b.min_accuracy:.0%} of discovery prompts and the corruption lowers the logit difference by at least "
             f"{b.min_gap:g}.</p>")
    if b.refusal:
        body += f'<p class="refusal">Stopped: {text(b.refusal)}</p>'
    return body


def _split(found) -> str:
    s = found.split
    examples = lambda pairs: table(("clean", "corrupted"), pairs)  # noqa: E731
    return (f"<p>{text(s.how)}: {s.n_discovery} discovery and {s.n_heldout} held-out prompt pairs, "
            f"{s.shared_prompts} clean prompts in common. Every claim below is made on discovery prompts; the "
            f"circuit is checked on held-out ones.</p><h3>Discovery examples</h3>{examples(s.discovery_examples)}"
            f"<h3>Held-out examples</h3>{examples(s.heldout_examples)}")


def _where(where) -> str:
    agreement = where.agreement
    heads = table(("head", "exact effect", "AtP* |estimate|"),
                  [(h, where.head_effects[h], _atp_of(where, h)) for h in where.top_heads], numeric=(1, 2))
    return (png(where.lens.plot(), "logit lens", "Logit lens of the first discovery prompt: the answer's probability "
                "read from the residual stream before each block.")
            + png(where.dla.plot(), "direct logit attribution",
                  "Direct logit attribution: each head's and MLP's direct contribution to the logit difference.")
            + png(where.resid.plot(), "residual patching", "Residual stream patching (denoising): the metric when "
                  "the clean residual is restored at one layer and position.")
            + "<h3>Heads</h3>" + png(where.exact.plot(), "exact head patching",
                                     f"Exact patching of every head in layers {list(where.exact.layers)}.")
            + heads + png(agreement.plot(), "AtP* against exact patching",
                          f"AtP* vs exact on {agreement.n_cells} heads: Pearson {agreement.pearson:.2f}, Spearman "
                          f"{agreement.spearman:.2f}, {agreement.top_overlap:.0%} of the top {agreement.k} shared."))


def _atp_of(where, head: str) -> float:
    layer, index = (int(x) for x in head[1:].split("H"))
    return float(where.atp.effects[where.atp.layers.index(layer), index])


def _who(who, where) -> str:
    roles, movers = who.roles, who.movers
    scores = ("previous_token", "duplicate_token", "induction", "copying", "copy_suppression", "successor")
    rows = []
    for head, labels in who.labels.items():
        layer, index = (int(x) for x in head[1:].split("H"))
        values = [float(getattr(roles, s)[layer, index]) for s in scores]
        mover = [float(movers.attention[layer, index]), float(movers.copying[layer, index])]
        rows.append((head, *values, *mover, ", ".join(role for role, _ in labels) or "—"))
    body = table(("head", "prev-token", "duplicate", "induction", "copying", "copy-suppr.", "successor",
                  "attends to answer", "copies answer", "roles"), rows, numeric=tuple(range(1, 9)))
    baseline = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in roles.baselines.items())
    body += (f'<p class="muted">Role scores on {roles.n_seqs} repeated random sequences of {roles.seq_len} tokens '
             f"(a head with no role scores about: {text(baseline)}). Mover scores on the {movers.n_prompts} discovery "
             f"prompts whose answer occurs earlier: attention from the answer position to it, and the fraction of "
             f"prompts where the head's OV output ranks it first of {movers.n_candidates} candidate tokens.</p>")
    return body + png(roles.plot(), "head role scores", "Role scores of every head (layer × head).")


def _circuit(stage) -> str:
    check, curve = stage.check, stage.curve
    rows = [("faithfulness f, discovery", check.f_discovery), ("faithfulness f, held out", check.f_heldout),
            ("|1 − f|, held out", check.heldout_error), ("complement f(N∖C), discovery", check.complement_f),
            ("edges", check.n_edges), ("fraction of the graph", check.fraction),
            ("CPR (signed ranking; area under f)", curve.cpr),
            ("CMD (area under |1 − f|; lower is better)", curve.cmd)]
    marks = [("chosen circuit, discovery", check.fraction, check.f_discovery),
             ("chosen circuit, held out", check.fraction, check.f_heldout)]
    figure = curve.plot(marks=marks, title=f"faithfulness by budget (the circuit: |1 − f| ≤ {stage.tolerance:g})")
    minimal = table(("edge", "share of the effect lost without it"), sorted(check.minimality.items(),
                    key=lambda item: -abs(item[1])), numeric=(1,))
    return (inline_svg(stage.view.to_svg(), "The circuit at node level: heads and MLPs sized by importance, the "
                       "strongest connections between them; roles from section 4.")
            + table(("measure", "value"), rows, numeric=(1,))
            + png(figure, "faithfulness curve", "f of circuits grown from the logits at MIB's budgets; stars: the "
                  "chosen circuit on discovery and held-out prompts. A faithful circuit has f close to 1.")
            + "<h3>Minimality</h3>" + minimal
            + f'<p class="muted">Edges scored by {text(stage.scores.method)} with {text(check.ablation)} ablation; '
              f"every edge with its score is in report.json.</p>")


def _features(features) -> str:
    parts = []
    for sae in features.saes:
        rows = []
        for board in sae.dashboards.features:
            examples = "<br>".join(_highlight(e, board.max_activation) for e in board.top_examples[:2])
            promoted = ", ".join(f"{token!r}" for token, _ in board.promoted[:5])
            rows.append((board.feature, float(sae.attribution.attributions[board.feature]), board.density,
                         examples, promoted))
        parts.append(f"<h3>{text(sae.attribution.hook_name)} ({text(sae.path)})</h3>"
                     + _raw_table(("feature", "attribution", "density", "top activating contexts", "promotes"), rows))
    return "".join(parts)


def _highlight(example, top: float) -> str:
    """An example's tokens, each shaded by the feature's activation on it (escaped)."""
    spans = []
    for token, value in zip(example.tokens, example.activations):
        alpha = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
        spans.append(f'<span class="tok" style="background:rgba(234,88,12,{alpha:.2f})" '
                     f'title="{value:.3g}">{text(token)}</span>')
    return "".join(spans)


def _raw_table(headers, rows) -> str:
    """A table whose third and fourth columns are HTML built here (tokens already escaped)."""
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join(f'<tr><td class="num">{f}</td><td class="num">{number(a)}</td><td class="num">{number(d, 4)}</td>'
                   f"<td>{html}</td><td>{text(promoted)}</td></tr>" for f, a, d, html, promoted in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
