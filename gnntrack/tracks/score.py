"""The TrackML score and TrackML submissions (CSV: event_id, hit_id, track_id).

The score follows the public TrackML challenge definition (trackml-library `score_event`):

* every hit of the event is assigned to exactly one reconstructed track;
* a track's *majority particle* is the particle with the most hits in the track (ties go to the
  smallest particle_id; a tie can never pass the > 50 % cut below, so ties do not change the score);
* a track counts when its majority particle holds more than half of the track's hits AND the
  track holds more than half of the particle's hits (the particle's hit count is taken from the
  truth table, i.e. all its hits in the event);
* score = sum of the truth weights of the majority particle's hits in counted tracks, divided by
  the sum of all truth weights (1 for real TrackML events).

Noise (particle_id 0) is not special-cased, exactly as in the public definition: real TrackML
truth gives noise hits weight 0, so a "noise track" can count but adds nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path
from gnntrack.io.trackml import read_csv_file

SUBMISSION_COLUMNS = ("event_id", "hit_id", "track_id")


def make_submission(event_id: int, hit_id: np.ndarray, track_id: np.ndarray) -> pd.DataFrame:
    """A submission table: [n_hits] event_id, hit_id, track_id (int64)."""
    hit_id = np.asarray(hit_id, dtype=np.int64).ravel()
    track_id = np.asarray(track_id, dtype=np.int64).ravel()
    if hit_id.shape != track_id.shape:
        raise ValueError(f"hit_id {hit_id.shape} and track_id {track_id.shape} differ in shape")
    return pd.DataFrame({"event_id": np.full(hit_id.size, int(event_id), np.int64),
                         "hit_id": hit_id, "track_id": track_id})


def validate_submission(submission: pd.DataFrame, truth_hit_id: np.ndarray | None = None, *,
                        source: str = "submission") -> pd.DataFrame:
    """Checks columns, types and (with `truth_hit_id`) that every event hit appears exactly once.

    Returns the submission with int64 hit_id / track_id. Raises InputError naming `source` and the
    problem (missing column, non-integer values, duplicate hit ids, missing or unknown hits).
    """
    missing = [c for c in ("hit_id", "track_id") if c not in submission.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}; a submission needs "
                         f"columns {', '.join(SUBMISSION_COLUMNS)} (found {', '.join(map(str, submission.columns))})")
    out = submission.copy()
    for col in ("event_id", "hit_id", "track_id"):
        if col not in out.columns:
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() | (values != np.floor(values))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{source}: column {col} must hold integers; row {row} has {out[col].iloc[row]!r}")
        out[col] = values.astype(np.int64)
    dup = out["hit_id"].duplicated()
    if dup.any():
        ids = out.loc[dup, "hit_id"].unique()
        raise InputError(f"{source}: {ids.size} duplicate hit_id(s), e.g. {ids[:5].tolist()}; "
                         "each hit must be assigned to exactly one track")
    if truth_hit_id is not None:
        truth_hit_id = np.asarray(truth_hit_id, dtype=np.int64)
        sub_ids = out["hit_id"].to_numpy()
        absent = np.setdiff1d(truth_hit_id, sub_ids)
        if absent.size:
            raise InputError(f"{source}: {absent.size} of the event's {truth_hit_id.size} hits are missing, "
                             f"e.g. hit_id {absent[:5].tolist()}; every hit needs a track_id")
        unknown = np.setdiff1d(sub_ids, truth_hit_id)
        if unknown.size:
            raise InputError(f"{source}: {unknown.size} hit_id(s) are not in the event, e.g. {unknown[:5].tolist()}")
    return out


def analyze_tracks(truth: pd.DataFrame, submission: pd.DataFrame) -> pd.DataFrame:
    """Per reconstructed track: its size, majority particle and the majority's share.

    Args:
      truth: [n_hits] with hit_id, particle_id, weight.
      submission: [n_hits] with hit_id, track_id, covering exactly the truth hits (not checked
        here; see `validate_submission`).

    Returns:
      DataFrame [n_tracks] sorted by track_id: track_id, nhits, major_particle_id,
      major_particle_nhits (the particle's hits in the whole event), major_nhits (its hits in the
      track), major_weight (their summed truth weight, not normalised).
    """
    particle_nhits = truth["particle_id"].value_counts(sort=False)
    event = truth[["hit_id", "particle_id", "weight"]].merge(
        submission[["hit_id", "track_id"]], on="hit_id", how="inner", validate="one_to_one")
    event["weight"] = event["weight"].astype(np.float64)  # sum float32 weights in double precision
    pairs = (event.groupby(["track_id", "particle_id"], sort=True)
             .agg(major_nhits=("weight", "size"), major_weight=("weight", "sum"))
             .reset_index())
    nhits = pairs.groupby("track_id", sort=True)["major_nhits"].sum()
    # majority per track: most hits, then smallest particle_id (the stable sort keeps id order)
    pairs = pairs.sort_values(["track_id", "major_nhits", "particle_id"], ascending=[True, False, True],
                              kind="stable")
    major = pairs.drop_duplicates("track_id", keep="first").set_index("track_id")
    out = pd.DataFrame({
        "track_id": nhits.index.to_numpy(np.int64),
        "nhits": nhits.to_numpy(np.int64),
        "major_particle_id": major.loc[nhits.index, "particle_id"].to_numpy(np.int64),
        "major_nhits": major.loc[nhits.index, "major_nhits"].to_numpy(np.int64),
        "major_weight": major.loc[nhits.index, "major_weight"].to_numpy(np.float64),
    })
    out.insert(3, "major_particle_nhits",
               particle_nhits.reindex(out["major_particle_id"]).to_numpy(np.int64))
    return out


def good_tracks(tracks: pd.DataFrame) -> np.ndarray:
    """bool [n_tracks]: the double-majority condition (> 50 % both ways), in exact integer arithmetic."""
    major = tracks["major_nhits"].to_numpy()
    return (2 * major > tracks["nhits"].to_numpy()) & (2 * major > tracks["major_particle_nhits"].to_numpy())


def trackml_score(truth: pd.DataFrame, submission: pd.DataFrame, *, validate: bool = True) -> float:
    """The TrackML score of one event's submission (see module docstring).

    Args:
      truth: the event's truth table (hit_id, particle_id, weight).
      submission: hit_id, track_id for every hit of the event (event_id optional).
      validate: check the submission first (InputError on missing/duplicate/unknown hits).

    Returns:
      float in [0, 1] (for non-negative weights).
    """
    if validate:
        submission = validate_submission(submission, truth["hit_id"].to_numpy())
    total = float(truth["weight"].astype(np.float64).sum())
    if total <= 0:
        return 0.0
    tracks = analyze_tracks(truth, submission)
    return float(tracks["major_weight"].to_numpy()[good_tracks(tracks)].sum() / total)


def read_submission(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a submission CSV (event_id, hit_id, track_id; csv or csv.gz); InputError naming the
    file if it is missing, unreadable, truncated or malformed."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"submission file not found: {path}")
    table = read_csv_file(path)  # InputError naming the file if truncated, corrupt or malformed
    table.columns = [str(c).strip() for c in table.columns]
    return validate_submission(table, source=str(path))


def write_submission(submission: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Writes a submission CSV atomically (compressed when the name ends in .gz)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        submission.loc[:, list(SUBMISSION_COLUMNS)].to_csv(tmp, index=False)
    return path
