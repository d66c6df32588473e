"""A local web app over the results store: ``mechscope serve``.

::

    mechscope serve                          # http://127.0.0.1:8765, the default store
    mechscope serve --store results.db --model smollm2-135m

Pages: **Runs** (every run; filter, open, delete), **Run** (an investigation's report,
live: hover a cell for its value, click a head to see its attention), **Compare** (two runs
side by side, differences marked), **Attention** (a layer × head grid of patterns for a
stored or typed prompt, CircuitsVis-style), **Circuit explorer** (the node-level circuit,
pan and zoom, a budget slider over the measured budgets), **Features** (stored SAE
dashboards, searchable, exportable as Neuronpedia batch JSON) and **Playground** (next
tokens, logit lens, attention, SAE features of a typed prompt).

:mod:`~.factory` builds the app, :mod:`~.security` guards it, :mod:`~.service` holds the
model, :mod:`~.store_access` reads the store, :mod:`~.views` turns results into what the
pages draw, :mod:`~.routes` serves them, and ``static/`` holds the scripts (d3 from npm,
pinned in ``web/``; ``make app-assets`` rebuilds the vendored copy).
"""

from mechscope.app.factory import Limits, create_app

__all__ = ["Limits", "create_app"]
