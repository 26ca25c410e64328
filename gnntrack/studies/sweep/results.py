"""Results of a study: the trials table, the best trial, parameter importances and the summary
files (summary.json, trials.csv, trials.md, plots)."""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gnntrack.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from gnntrack.studies.search_space import ParamSpec
from gnntrack.studies.sweep.plots import write_sweep_plots
from gnntrack.studies.sweep.settings import SweepResult, SweepSettings
from gnntrack.studies.sweep.study import default_storage_url

log = logging.getLogger(__name__)


def trials_dataframe(study, specs: Sequence[ParamSpec], settings: SweepSettings):
    """One row per trial (surplus claims left out).

    Columns: number, state, value (COMPLETE: final metric; PRUNED: last reported value), one
    column per parameter key, seed, last_step (last reported step), duration_s, run_dir,
    retry_of, note (error message or "re-queued as #k").
    """
    import pandas as pd

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    requeued = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    rows = []
    for t in trials:
        value = t.value if t.values else None
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        note = t.user_attrs.get("error", "")
        if t.number in requeued:
            note = f"interrupted; re-queued as #{requeued[t.number]}"
        rows.append({
            "number": t.number, "state": t.state.name, "value": value,
            **{spec.key: t.params.get(spec.key) for spec in specs},
            "seed": t.user_attrs.get("seed"),
            "last_step": max(t.intermediate_values) if t.intermediate_values else None,
            "duration_s": t.user_attrs.get("duration_s"), "run_dir": t.user_attrs.get("run_dir"),
            "retry_of": t.user_attrs.get("retry_of"),
            "note": "; ".join(n for n in ("baseline (base config)" if t.user_attrs.get("baseline") else "",
                                          note) if n)})
    columns = ["number", "state", "value", *[s.key for s in specs], "seed", "last_step", "duration_s",
               "run_dir", "retry_of", "note"]
    return pd.DataFrame(rows, columns=columns)


def best_row(df, settings: SweepSettings):
    """The COMPLETE row with the best value (None if no trial completed)."""
    complete = df[(df["state"] == "COMPLETE") & df["value"].notna()]
    if complete.empty:
        return None
    order = complete["value"].astype(float)
    return complete.loc[order.idxmax() if settings.direction == "maximize" else order.idxmin()]


def sweep_result(study, specs, settings: SweepSettings, workdir: Path) -> SweepResult:
    df = trials_dataframe(study, specs, settings)
    best = best_row(df, settings)
    return SweepResult(
        best_params={} if best is None else {s.key: _py(best[s.key]) for s in specs},
        best_value=None if best is None else float(best["value"]),
        best_trial=None if best is None else int(best["number"]),
        best_run_dir=None if best is None else str(workdir / best["run_dir"]),
        trials_df=df, study_name=settings.study_name,
        storage=settings.storage or default_storage_url(workdir), workdir=str(workdir))


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def param_importances(study, specs: Sequence[ParamSpec]) -> tuple[str, dict[str, float]]:
    """(evaluator name, importances normalised to sum 1) over COMPLETE trials.

    fANOVA when scikit-learn is installed, else PED-ANOVA (optuna's own, no extra dependency).
    ({} when fewer than 2 complete trials or the evaluator cannot cope, e.g. no variation.)
    """
    import optuna
    from optuna.trial import TrialState

    if importlib.util.find_spec("sklearn") is not None:
        name, evaluator = "fANOVA", optuna.importance.FanovaImportanceEvaluator(seed=0)
    else:
        name, evaluator = "PED-ANOVA", optuna.importance.PedAnovaImportanceEvaluator()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return name, {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return name, {k: float(v) for k, v in optuna.importance.get_param_importances(
                study, evaluator=evaluator, params=[s.key for s in specs]).items()}
    except Exception as exc:  # e.g. a parameter that never varied among complete trials
        log.info("parameter importances unavailable: %r", exc)
        return name, {}


def markdown_table(df, float_digits: int = 4) -> str:
    """A GitHub markdown table of `df` (no tabulate dependency)."""
    def fmt(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.{float_digits}g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_sweep_summary(study, workdir: str | os.PathLike, specs: Sequence[ParamSpec],
                        settings: SweepSettings) -> dict:
    """Writes summary.json, trials.csv, trials.md and the plots under `workdir`; returns the summary."""
    workdir = Path(workdir)
    df = trials_dataframe(study, specs, settings)
    best = best_row(df, settings)
    evaluator, importances = param_importances(study, specs)
    counts = df["state"].value_counts().to_dict()
    if summary_baseline := baseline_summary(df, best, settings):
        summary_baseline["metrics"] = _val_metrics(study, summary_baseline["trial"])
    summary = {
        "study": settings.study_name, "storage": settings.storage or default_storage_url(workdir),
        "metric": settings.metric, "direction": settings.direction, "sampler": settings.sampler,
        "pruner": settings.pruner, "n_trials_target": settings.n_trials,
        "counts": {k: int(v) for k, v in counts.items()},
        "best": None if best is None else {
            "trial": int(best["number"]), "value": float(best["value"]),
            "params": {s.key: _py(best[s.key]) for s in specs}, "seed": _py(best["seed"]),
            "run_dir": str(best["run_dir"]), "metrics": _val_metrics(study, int(best["number"]))},
        "baseline": summary_baseline,
        "param_importances": importances, "importance_evaluator": evaluator,
        "space": [s.to_dict() for s in specs],
    }
    write_json_atomic(workdir / "summary.json", summary)
    with atomic_path(workdir / "trials.csv") as tmp:
        df.to_csv(tmp, index=False)
    head = [f"# Sweep `{settings.study_name}`: {settings.metric} ({settings.direction}), "
            f"{settings.sampler} sampler, {settings.pruner} pruner\n"]
    if best is not None:
        params = ", ".join(f"{s.key}={_fmt_param(best[s.key])}" for s in specs)
        head.append(f"Best: trial {int(best['number'])}, {settings.metric} = {float(best['value']):.4f} "
                    f"({params}); run dir `{best['run_dir']}`.\n")
    if summary["baseline"] is not None:
        b = summary["baseline"]
        gain = "best - baseline" if settings.direction == "maximize" else "baseline - best"
        head.append(f"Baseline (the base config, trial {b['trial']}): {settings.metric} = {b['value']:.4f}; "
                    f"{gain} = {b['improvement']:+.4f}.\n")
    if importances:
        head.append(f"Parameter importances ({evaluator}): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()) + ".\n")
    write_text_atomic(workdir / "trials.md", "\n".join(head) + "\n" + markdown_table(df))
    write_sweep_plots(df, importances, specs, settings, workdir, evaluator=evaluator)
    return summary


def _val_metrics(study, number: int) -> dict:
    """The final validation metrics (val_*) a trial's training returned."""
    metrics = study.get_trials(deepcopy=False)[number].user_attrs.get("final_metrics", {})
    return {k: v for k, v in metrics.items() if k.startswith("val_")}


def baseline_summary(df, best, settings: SweepSettings) -> dict | None:
    """The baseline trial's value and best - baseline (signed so that > 0 means better)."""
    rows = df[df["note"].str.startswith("baseline") & (df["state"] == "COMPLETE")]
    if rows.empty or best is None:
        return None
    value = float(rows["value"].iloc[0])
    sign = 1.0 if settings.direction == "maximize" else -1.0
    return {"trial": int(rows["number"].iloc[0]), "value": value,
            "improvement": sign * (float(best["value"]) - value)}


def _fmt_param(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)
