"""One table and figure from several editing benchmark runs on the same requests.

    python benchmarks/editing_table.py editing_smollm2-135m editing_smollm2-135m_rome -o editing_smollm2-135m_all

Reads ``benchmarks/results/<name>.json`` written by ``benchmarks/editing.py`` (a long run
may be split by method with ``--methods … --tag …``), checks that they scored the same
model on the same requests with the same evaluation settings, and writes
``benchmarks/results/<out>.md`` and ``.png`` with every method's row, in the order given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mechscope.editing import EvaluationTable
from mechscope.editing.scores import EditEvaluation

RESULTS = Path(__file__).parent / "results"
SAME = ("model", "requests", "first_request", "eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="result names (without .json) in benchmarks/results")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    runs = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.runs]
    for run in runs:
        run.setdefault("first_request", 0)  # (runs written before the field existed started at 0)
    for name, run in zip(args.runs[1:], runs[1:]):
        differ = [key for key in SAME if run.get(key) != runs[0].get(key)]
        if differ:
            raise SystemExit(f"{name} differs from {args.runs[0]} in {', '.join(differ)}: "
                             f"{[run.get(k) for k in differ]} vs {[runs[0].get(k) for k in differ]}; "
                             f"merge only runs on the same requests")
    # (NaN scores, as without generation, are written as text)
    rows = [EditEvaluation(**{k: float(v) if v in ("nan", None) else v for k, v in row.items() if k != "type"},
                           cases=()) for run in runs for row in run["rows"]]
    table = EvaluationTable(rows=tuple(rows))
    (RESULTS / f"{args.out}.md").write_text(table.markdown() + "\n")
    table.plot().savefig(RESULTS / f"{args.out}.png", dpi=110)
    print(table.markdown())
    print(f"wrote {RESULTS / args.out}.md and .png")


if __name__ == "__main__":
    main()
