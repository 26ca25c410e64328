"""Construction statistics: sum per-event counts (build.construction_stats) into a summary,
and format the efficiency / purity table."""

from __future__ import annotations

from typing import Iterable


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def merge_stats(stats: Iterable[dict]) -> dict:
    """Sums count dicts (nested dicts summed key by key; booleans and-ed)."""
    total: dict = {}
    for s in stats:
        _add_into(total, s)
    return total


def _add_into(total: dict, s: dict) -> None:
    for key, value in s.items():
        if isinstance(value, dict):
            _add_into(total.setdefault(key, {}), value)
        elif isinstance(value, bool):
            total[key] = total.get(key, True) and value
        else:
            total[key] = total.get(key, 0) + value


def summarize(total: dict, seconds: float | None = None, n_graphs: int | None = None) -> dict:
    """Summary dict from merged counts: events, mean_nodes, mean_edges, efficiency, purity,
    seconds_per_event, by_pt_min {thr: efficiency, purity, mean_edges, ...}, by_pt_bin {bin: efficiency}.

    Efficiency / purity are None without truth (or with an empty denominator).
    """
    events = int(total.get("events", 0))
    truth = bool(total.get("has_truth", False)) and events > 0
    out = {
        "events": events,
        "graphs": int(n_graphs if n_graphs is not None else events),
        "mean_nodes": total.get("nodes", 0) / events if events else 0.0,
        "mean_edges": total.get("edges", 0) / events if events else 0.0,
        "mean_true_edges": total.get("true_edges", 0) / events if events else 0.0,
        "efficiency": _ratio(total.get("found_segments", 0), total.get("true_segments", 0)) if truth else None,
        "purity": _ratio(total.get("true_edges", 0), total.get("edges", 0)) if truth else None,
        "seconds_per_event": (seconds / events) if (seconds is not None and events) else None,
    }
    if truth:
        out["by_pt_min"] = {
            thr: {"efficiency": _ratio(c["found_segments"], c["true_segments"]),
                  "purity": _ratio(c["true_edges"], c["edges"]),
                  "mean_edges": c["edges"] / events, "mean_true_segments": c["true_segments"] / events}
            for thr, c in total.get("by_pt_min", {}).items()}
        out["by_pt_bin"] = {
            b: {"efficiency": _ratio(c["found_segments"], c["true_segments"]),
                "mean_true_segments": c["true_segments"] / events}
            for b, c in total.get("by_pt_bin", {}).items()}
    if truth and "before_filter" in total:
        out["filter"] = filter_summary(total, events)
    return out


def filter_summary(total: dict, events: int) -> dict:
    """What the edge filter did (counts summed over events, see build.build_event):
    reduction = edges before / edges kept; kept_efficiency = true segments still found / found
    before the filter; efficiency_before: the construction's efficiency; the same per pT threshold."""
    before = total["before_filter"]

    def one(b: dict, a: dict) -> dict:
        return {"edges_before": b["edges"] / events, "reduction": _ratio(b["edges"], a["edges"]),
                "efficiency_before": _ratio(b["found_segments"], b["true_segments"]),
                "kept_efficiency": _ratio(a["found_segments"], b["found_segments"]),
                "purity_before": _ratio(b["true_edges"], b["edges"])}

    out = one(before, total)
    out["by_pt_min"] = {t: one(b, total["by_pt_min"][t]) for t, b in before.get("by_pt_min", {}).items()}
    return out


def format_table(rows: list[dict]) -> str:
    """Markdown table; rows: dicts with name, pt_min, efficiency, purity, mean_edges, mean_nodes
    and optionally anchor_purity, seconds_per_event."""
    head = "| config | pT min (GeV) | efficiency | purity | anchor purity | edges | nodes | s/event |"
    lines = [head, "|" + " --- |" * 8]
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        lines.append(f"| {r['name']} | {r['pt_min']:g} | {fmt(r.get('efficiency'), '.4f')} | "
                     f"{fmt(r.get('purity'), '.3f')} | {fmt(r.get('anchor_purity'), '.3f')} | "
                     f"{r['mean_edges']:.0f} | {r['mean_nodes']:.0f} | {fmt(r.get('seconds_per_event'), '.3f')} |")
    return "\n".join(lines)
