"""The main job: from a model and a behaviour to a verified explanation, in stages.

::

    import mechscope
    from mechscope.investigate import investigate, InvestigateOptions

    model = mechscope.load_model("smollm2-135m")
    found = investigate(model, "ioi", InvestigateOptions.quick())
    for claim in found.summary.claims:
        print(claim.text)

See :mod:`~.run` for the stages, :mod:`~.steps` for what each computes, :mod:`~.summary`
for the sentences, and :mod:`mechscope.report` for the HTML report.
"""

from mechscope.investigate.options import InvestigateOptions
from mechscope.investigate.run import STAGES, Investigation, investigate, load_investigation

__all__ = ["STAGES", "InvestigateOptions", "Investigation", "investigate", "load_investigation"]
