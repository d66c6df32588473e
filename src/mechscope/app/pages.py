"""The HTML of every page: one frame (navigation, styles, scripts), each page's own container.

Pages are drawn in the browser from the JSON APIs (d3, bundled; no CDN); the server sends
only this frame with the page's parameters in ``data-`` attributes, every value escaped.
No inline script runs (the Content-Security-Policy forbids it): each page loads
``/static/js/<page>.js``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mechscope.report.html import text

NAV = (("runs", "/", "Runs"), ("compare", "/compare", "Compare"), ("attention", "/attention", "Attention"),
       ("features", "/features", "Features"), ("playground", "/playground", "Playground"))


def page(name: str, title: str, data: Mapping[str, object] | None = None, *, scripts: tuple[str, ...] = ()) -> str:
    """The frame of page ``name`` (its script is ``/static/js/{name}.js``)."""
    links = "".join(f'<a href="{href}"{" class=active" if key == name else ""}>{text(label)}</a>'
                    for key, href, label in NAV)
    attrs = "".join(f' data-{text(k)}="{text(v)}"' for k, v in (data or {}).items() if v is not None)
    tags = "".join(f'<script src="/static/{text(s)}"></script>' for s in ("vendor/d3.min.js", "js/common.js",
                                                                          *scripts, f"js/{name}.js"))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{text(title)} · mechscope</title>'
            f'<link rel="stylesheet" href="/static/app.css"><link rel="icon" href="/static/favicon.svg"></head>'
            f'<body><header><a class="brand" href="/">mechscope</a><nav>{links}</nav>'
            f'<span id="model-status" class="status"></span></header>'
            f'<main id="app" data-page="{text(name)}"{attrs}><p class="loading">Loading…</p></main>{tags}</body></html>\n')


def missing(message: str) -> str:
    """A page for something not found (a deleted run, a mistyped id)."""
    links = "".join(f'<a href="{href}">{text(label)}</a>' for _, href, label in NAV)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>not found · mechscope</title>'
            f'<link rel="stylesheet" href="/static/app.css"></head><body><header><a class="brand" href="/">mechscope'
            f'</a><nav>{links}</nav></header><main><p class="error">{text(message)}</p></main></body></html>\n')
