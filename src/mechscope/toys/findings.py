"""The field's findings, each reproduced by one call and checked against its paper's claims.

::

    from mechscope.toys.findings import FINDINGS

    findings = FINDINGS["grokking"](quick=True)     # trains (or loads from the cache), analyses
    findings.checks                                   # {"test accuracy ≥ 0.99": True, ...}
    findings.figures()                                # {"grokking": Figure}

Each entry of :data:`FINDINGS` takes ``quick`` (small configurations: seconds to minutes)
and ``progress`` and returns a :class:`Findings`: the results of the toy's analyses, the
paper's claims as named pass/fail checks with their tolerances, and one figure per
reproduced paper figure. The CLI (``mechscope toys NAME [--quick]``) and the benchmark
scripts call these; the policy (which configuration, which tolerance) lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from mechscope.results import Result


@dataclass(frozen=True)
class Findings(Result):
    """One paper's findings reproduced on a toy."""

    name: str
    """Which finding (a key of :data:`FINDINGS`)."""
    quick: bool
    """Small configurations (True) or the paper-sized ones."""
    results: dict[str, Result]
    """The analyses, by name (each has ``plot()`` unless noted)."""
    checks: dict[str, bool]
    """The paper's claims, each with its tolerance in its name, and whether it held."""
    numbers: dict[str, float | int | str | None]
    """The headline numbers, for the README's table beside the paper's."""
    paper: dict[str, str] = field(default_factory=dict)
    """What the paper reported, for the same rows."""

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def figures(self) -> dict[str, Figure]:
        """One figure per result that draws one."""
        return {name: result.plot() for name, result in self.results.items() if hasattr(result, "plot")}


def superposition_findings(*, quick: bool = False, progress: bool = True) -> Findings:
    """Elhage et al. (2022): geometry, phase diagram, feature dimensionality; and an SAE that recovers the features."""
    from mechscope.toys.superposition import train_superposition
    from mechscope.toys.superposition_analysis import (
        analyse_dimensionality,
        analyse_geometry,
        analyse_phase_diagram,
        dimensionality_config,
        geometry_config,
        phase_config,
    )
    from mechscope.toys.superposition_sae import analyse_sae_recovery, sae_recovery_config

    train = lambda config: train_superposition(config, progress=progress)  # noqa: E731
    geometry = analyse_geometry(train(geometry_config(quick)))
    phase = analyse_phase_diagram(train(phase_config(quick)))
    dims = analyse_dimensionality(train(dimensionality_config(quick)))
    sae = analyse_sae_recovery(train(sae_recovery_config(quick)), steps=1500 if quick else 4000)
    grid = phase.phase
    dense = int(min(range(len(geometry.sparsities)), key=lambda i: geometry.sparsities[i]))
    checks = {
        "dense: the 2 most important features kept, orthogonal (|cos| < 0.1), the rest dropped":
            geometry.n_represented[dense] == 2 and bool((geometry.norms[dense, :2] > 0.5).all())
            and geometry.dense_cosine < 0.1,
        "sparse: all 5 features in a pentagon (gaps within 10° of 72°)": geometry.is_pentagon,
        "phase diagram: dense and unimportant → not represented": grid[0][0] == 0,
        "phase diagram: dense and important → dedicated dimension": grid[-1][0] == 1,
        "phase diagram: sparse → superposition (antipodal)": grid[len(grid) // 2][-1] == 2 and phase.antipodal > 0.9,
        "dimensionality: D_i near sticky fractions at least twice as often as uniform values":
            dims.near_sticky > 2 * dims.near_sticky_uniform,
        "SAE: mean max cosine with the true features ≥ 0.9, above random directions":
            sae.mean_max_cosine >= 0.9 and sae.mean_max_cosine > sae.control_mean_max_cosine,
    }
    numbers = {"pentagon_gaps_degrees": ", ".join(f"{g:.1f}" for g in geometry.sparse_gaps_degrees),
               "dense_cosine": geometry.dense_cosine, **{f"phase_{k}": v for k, v in phase.counts().items()},
               "near_sticky": dims.near_sticky, "near_sticky_uniform": dims.near_sticky_uniform,
               "sae_mean_max_cosine": sae.mean_max_cosine, "sae_control": sae.control_mean_max_cosine,
               "sae_fvu": sae.fvu}
    paper = {"geometry": "dense: 2 orthogonal features; sparse: pentagon (fig. 2-3)",
             "phase": "not represented / dedicated / superposition regions (fig. 'phase change')",
             "dimensionality": "D_i sticks at 1, 3/4, 2/3, 1/2, 2/5, 3/8, 1/3",
             "sae": "Sharkey et al. (2022) recover toy features with MMCS near 1; the issue asks ≥ 0.9"}
    return Findings(name="superposition", quick=quick, checks=checks, numbers=numbers, paper=paper,
                    results={"geometry": geometry, "phase": phase, "dimensionality": dims, "sae": sae})


def grokking_findings(*, quick: bool = False, progress: bool = True) -> Findings:
    """Nanda et al. (2023): grokking, key frequencies, cos-sum logits, progress measures and phases."""
    from mechscope.toys.grokking import GrokkingConfig, train_grokking
    from mechscope.toys.grokking_analysis import analyse_grokking

    run = train_grokking(GrokkingConfig.quick() if quick else GrokkingConfig(), progress=progress)
    a = analyse_grokking(run, progress=progress)
    index = {e: i for i, e in enumerate(a.epochs)}
    nearest = lambda epoch: index[min(a.epochs, key=lambda e: abs(e - epoch))]  # noqa: E731
    phases_found = None not in (a.memorised_at, a.cleanup_start, a.generalised_at)
    checks = {
        "test accuracy ≥ 0.99": a.final_test_accuracy >= 0.99,
        "3 to 8 key frequencies (paper: 5)": 3 <= len(a.key_frequencies) <= 8,
        "key cos(w(a+b−c)) terms explain ≥ 90% of the logits' variance": a.variance_explained >= 0.9,
        "the same number of other frequencies explain < 5%": a.variance_explained_control < 0.05,
        "phases in order: memorised < clean-up start < generalised": phases_found
            and a.memorised_at < a.cleanup_start <= a.generalised_at,
    }
    if phases_found:
        m, c = nearest(a.memorised_at), nearest(a.cleanup_start)
        # From its lowest point in the phase, not from the memorisation mark: train loss (and
        # with it the excluded loss) keeps falling for a while after the training pairs are right.
        lowest = min(a.excluded_loss[m : c + 1])
        checks["circuit formation: excluded loss rises (10x from its low) while test loss stays high"] = (
            a.excluded_loss[c] > 10 * lowest and a.test_loss[c] > 1.0)
        checks["circuit formation: restricted loss falls below the test loss before clean-up"] = (
            a.restricted_loss[c] < a.test_loss[c])
    numbers = {"p": a.p, "key_frequencies": ", ".join(map(str, a.key_frequencies)),
               "variance_explained": a.variance_explained, "variance_explained_control": a.variance_explained_control,
               "memorised_at": a.memorised_at, "cleanup_start": a.cleanup_start, "generalised_at": a.generalised_at,
               "final_test_accuracy": a.final_test_accuracy, "epochs": run.config.steps}
    paper = {"key_frequencies": "5 (14, 35, 41, 42, 52 for their seed)",
             "phases": "memorisation to ~1.4k epochs, circuit formation to ~9.4k, clean-up to ~13.3k (p = 113)",
             "variance_explained": "the issue asks ≥ 90%"}
    return Findings(name="grokking", quick=quick, checks=checks, numbers=numbers, paper=paper,
                    results={"grokking": a})


def othello_findings(*, quick: bool = False, progress: bool = True) -> Findings:
    """Li et al. (2022) and Nanda (2023): legal moves, linear board probes, probe-basis interventions."""
    from mechscope.toys.othello.game import random_games
    from mechscope.toys.othello.intervene import intervention_experiment
    from mechscope.toys.othello.model import EVAL_SEED, OthelloConfig, legal_move_accuracy, train_othello
    from mechscope.toys.othello.probe import board_probes

    run = train_othello(OthelloConfig.quick() if quick else OthelloConfig(), progress=progress)
    test_games = random_games(200 if quick else 1000, seed=EVAL_SEED + 1)
    legal = legal_move_accuracy(run.model, test_games)
    probes = board_probes(run.model, random_games(300 if quick else 3000, seed=EVAL_SEED + 2))
    n_layers = run.config.n_layers
    inner = list(range(1, n_layers))  # residual layers a later block still reads
    layer = max(inner, key=lambda l: probes.occupied_accuracy["mine_theirs"][l])
    games = random_games(200 if quick else 1000, seed=EVAL_SEED + 3)
    edits = intervention_experiment(run.model, probes.probes["mine_theirs"], games, layers=(layer,),
                                    n_cases=50 if quick else 300)
    best = {basis: max(values) for basis, values in probes.occupied_accuracy.items()}
    control = max(probes.control_accuracy["mine_theirs"])
    checks = {
        "legal-move accuracy ≥ 0.95": legal >= 0.95,
        "mine/theirs probe ≥ 0.90 at its best layer (occupied squares)": best["mine_theirs"] >= 0.9,
        "mine/theirs probe ≥ 0.2 above the same probe on a random-init model": best["mine_theirs"] - control >= 0.2,
        "mine/theirs basis above black/white": best["mine_theirs"] > best["black_white"],
        # 10 points, not merely "more": at 2-3% success both ways a bare comparison is noise.
        "edits succeed ≥ 10 points more often than no edit and a random direction":
            edits.success_rate >= max(edits.null_success_rate, edits.random_success_rate) + 0.10,
    }
    numbers = {"legal_move_accuracy": legal, "probe_mine_theirs": best["mine_theirs"],
               "probe_black_white": best["black_white"], "probe_random_init": control,
               "probe_best_layer": probes.best_layer("mine_theirs"), "edit_layer": layer,
               "edit_success": edits.success_rate, "edit_errors": edits.mean_errors,
               "null_success": edits.null_success_rate, "null_errors": edits.null_mean_errors,
               "random_success": edits.random_success_rate, "steps": run.config.steps,
               "games_trained": run.config.steps * run.config.batch_size}
    paper = {"legal": "Li et al.: top-1 legal 99.99% (8 layers × 512, 20M games)",
             "probes": "Li et al.: linear probes poor in black/white, non-linear good; Nanda: linear mine/theirs probes good",
             "edits": "Li et al.: edits bring the predicted legal moves to the edited board's in most cases"}
    return Findings(name="othello", quick=quick, checks=checks, numbers=numbers, paper=paper,
                    results={"training": run, "probes": probes, "intervention": edits})


def formation_findings(*, quick: bool = False, progress: bool = True) -> Findings:
    """Olsson et al. (2022): induction heads, in-context learning and the loss bump change together."""
    from mechscope.toys.formation import FormationConfig, analyse_formation, train_formation

    make = FormationConfig.quick if quick else FormationConfig
    runs = [train_formation(make(attention_only=flag), progress=progress) for flag in (True, False)]
    a = analyse_formation(runs)
    checks = {}
    for label in a.labels:
        steps = a.steps[label]
        checks[f"{label}: an induction head forms (score > 0.5)"] = a.final[label]["induction_score"] > 0.5
        checks[f"{label}: in-context learning improves by > 1 nat"] = (
            a.final[label]["icl_score"] < a.initial[label]["icl_score"] - 1)
        checks[f"{label}: induction, previous-token, ICL and the loss drop within 15% of training"] = (
            a.spread[label] is not None and a.spread[label] <= 0.15 * steps)
    numbers = {f"{label}: {key}": value for label in a.labels
               for key, value in {**{f"{m} halfway": a.phase_change[label][m] for m in a.phase_change[label]},
                                  "steepest loss drop": a.steepest_loss_drop[label],
                                  "final induction": a.final[label]["induction_score"],
                                  "final ICL": a.final[label]["icl_score"]}.items()}
    paper = {"phase change": "Olsson et al.: induction heads, ICL score and a loss bump appear in the same "
                             "window early in training, in attention-only and MLP models alike"}
    return Findings(name="formation", quick=quick, checks=checks, numbers=numbers, paper=paper,
                    results={"formation": a})


ADDS_THRESHOLD = 0.8
"""A model "adds" when some prompt format answers at least this share of pairs exactly."""


def arithmetic_findings(*, quick: bool = False, progress: bool = True,
                        models: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")) -> Findings:
    """Nikankin et al. (2024), step one: does a bundled model add? (The neuron analysis needs one that does.)"""
    from mechscope.models import load_model
    from mechscope.toys.arithmetic import addition_accuracy

    results, numbers, checks = {}, {}, {}
    for name in models[:1] if quick else models:
        result = addition_accuracy(load_model(name), max_result=20 if quick else 100,
                                   n_pairs=None if quick else 600, progress=progress)
        results[name] = result
        for fmt, value in result.accuracy.items():
            numbers[f"{name} {fmt}"] = value
        checks[f"{name} adds (≥ {ADDS_THRESHOLD:.0%} exact in some format)"] = max(result.accuracy.values()) >= ADDS_THRESHOLD
    paper = {"models": "Nikankin et al. study Llama3-8B, Llama3-70B, Pythia-6.9B, GPT-J (who add well)"}
    return Findings(name="arithmetic", quick=quick, checks=checks, numbers=numbers, paper=paper, results=results)


FINDINGS: dict[str, Callable[..., Findings]] = {
    "superposition": superposition_findings,
    "grokking": grokking_findings,
    "othello": othello_findings,
    "formation": formation_findings,
    "arithmetic": arithmetic_findings,
}
"""Each reproduced finding by name: ``FINDINGS[name](quick=..., progress=...) -> Findings``."""
