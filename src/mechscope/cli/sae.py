"""``mechscope sae …``: harvest activations, train, evaluate and look at sparse dictionaries.

    mechscope sae harvest smollm2-135m --hook blocks.15.hook_resid_post --tokens 1000000 --out store/
    mechscope sae train store/ --architecture topk --k 40 --out sae/
    mechscope sae eval smollm2-135m sae/
    mechscope sae dashboard smollm2-135m sae/ --top 20 --out dashboards/
"""

from __future__ import annotations

import typer

sae_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Sparse autoencoders and transcoders: harvest, train, eval, dashboard.",
)


def register(app: typer.Typer) -> None:
    """Add the ``sae`` command group to ``app``, with each step's command."""
    from mechscope.cli import sae_dashboard, sae_eval, sae_harvest, sae_train

    for module in (sae_harvest, sae_train, sae_eval, sae_dashboard):
        module.register(sae_app)
    app.add_typer(sae_app, name="sae")
