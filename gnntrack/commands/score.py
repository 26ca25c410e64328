"""`gnntrack score EVENT_PREFIX SUBMISSION.csv`: the TrackML score of a submission on one event."""

from __future__ import annotations

import argparse

HELP = "TrackML score of a submission CSV (event_id, hit_id, track_id) against an event's truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", metavar="EVENT_PREFIX",
                        help="event prefix with truth, e.g. data/event000001000 (or one of its files)")
    parser.add_argument("submission", metavar="SUBMISSION.csv",
                        help="CSV (or .csv.gz) with columns event_id, hit_id, track_id; rows of other "
                             "events in the file are ignored")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a line of text")


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from gnntrack.errors import InputError
    from gnntrack.io.trackml import read_event
    from gnntrack.tracks.score import analyze_tracks, good_tracks, read_submission, trackml_score, validate_submission

    event = read_event(args.prefix, ("hits", "truth"), required=("hits", "truth"))
    submission = read_submission(args.submission)
    if "event_id" in submission.columns:
        ids = np.unique(submission["event_id"].to_numpy())
        if event.event_id not in ids:
            raise InputError(f"{args.submission}: no rows for event {event.event_id} "
                             f"(event_id values: {ids[:5].tolist()}{' ...' if ids.size > 5 else ''})")
        submission = submission[submission["event_id"] == event.event_id]
    submission = validate_submission(submission, event.truth["hit_id"].to_numpy(), source=str(args.submission))
    value = trackml_score(event.truth, submission, validate=False)
    tracks = analyze_tracks(event.truth, submission)
    result = {"event_id": int(event.event_id), "score": value, "n_hits": int(len(submission)),
              "n_tracks": int(len(tracks)), "n_good_tracks": int(good_tracks(tracks).sum())}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"event {event.event_id}: TrackML score {value:.6f} "
              f"({result['n_good_tracks']:,} of {result['n_tracks']:,} tracks count, {result['n_hits']:,} hits)")
    return 0
