"""Reports people can open: self-contained HTML (figures inline, every string escaped).

:func:`render_investigation` writes the investigation's report; :mod:`~.html` holds the
small pieces (escaped tables, inline figures, the page frame) other reports reuse.
"""

from mechscope.report.investigation import render_investigation

__all__ = ["render_investigation"]
