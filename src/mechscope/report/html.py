"""Small pieces of self-contained HTML: escaped tables, inline figures, the page frame.

Every string that a model, a tokenizer or a user produced goes through :func:`text`
(HTML-escaped); figures are inlined (PNG as base64, SVG as markup mechscope wrote and
escaped itself), so a report opens from a file with no network.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from html import escape

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#0f172a;background:#f8fafc;line-height:1.45}
header{background:#0f172a;color:#f8fafc;padding:18px 32px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:2px 0;color:#cbd5e1;font-size:13.5px}
nav{padding:8px 32px;background:#e2e8f0;font-size:13.5px} nav a{margin-right:14px;color:#1e3a8a;text-decoration:none}
main{max-width:1080px;margin:0 auto;padding:8px 32px 48px}
section{background:white;border:1px solid #e2e8f0;border-radius:8px;margin:18px 0;padding:6px 22px 16px}
h2{font-size:18px;border-bottom:1px solid #e2e8f0;padding-bottom:6px} h2 .time{float:right;font-size:12.5px;color:#64748b;font-weight:normal}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9} td.num{text-align:right;font-variant-numeric:tabular-nums}
.claims li{margin:6px 0} .caveat{background:#fef3c7;border-left:4px solid #d97706;padding:6px 10px;margin:6px 0;font-size:14px}
.refusal{background:#fee2e2;border-left:4px solid #dc2626;padding:8px 12px}
figure{margin:10px 0} figure img{max-width:100%;border:1px solid #e2e8f0} figcaption{font-size:12.5px;color:#475569}
.prompt{font-family:ui-monospace,Menlo,monospace;font-size:12.5px;white-space:pre-wrap}
.muted{color:#64748b;font-size:12.5px} .svgbox{overflow-x:auto} .svgbox svg{max-width:100%;height:auto}
.tok{font-family:ui-monospace,Menlo,monospace;font-size:12px;white-space:pre;border-radius:3px;padding:0 1px}
"""


def text(value) -> str:
    """Any value as escaped HTML text."""
    return escape(str(value), quote=True)


def number(value, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return text(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "nan" if value != value else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence], *, numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped, numbers formatted; columns in ``numeric`` right-aligned."""
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{number(c)}</td>' if i in numeric else f"<td>{_cell(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value) -> str:
    return number(value) if isinstance(value, float) else text(value)


def png(figure, alt: str, caption: str = "", dpi: int = 100) -> str:
    """A matplotlib figure inlined as a PNG (the figure is closed afterwards)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    cap = f"<figcaption>{text(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{text(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def inline_svg(svg: str, caption: str = "") -> str:
    """SVG markup that mechscope wrote (its labels already escaped), inlined."""
    cap = f"<figcaption>{text(caption)}</figcaption>" if caption else ""
    return f'<figure><div class="svgbox">{svg}</div>{cap}</figure>'


def section(anchor: str, title: str, body: str, seconds: float | None = None, cached: bool = False) -> str:
    timing = ""
    if seconds is not None:
        timing = f'<span class="time">{seconds:.1f} s{" (from the results store)" if cached else ""}</span>'
    return f'<section id="{text(anchor)}"><h2>{text(title)}{timing}</h2>{body}</section>'


def page(title: str, header: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{text(a)}">{text(label)}</a>' for a, label in nav)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{text(title)}</title><style>{STYLE}</style>'
            f'</head><body><header>{header}</header><nav>{links}</nav><main>{body}</main></body></html>\n')
