"""TrackML-format input/output and safe writes.

  event.py    `Event` (hits, truth, particles, cells tables) and the column schemas
  trackml.py  read/write/validate TrackML CSV events (`read_event`, `write_event`, ...)
  summary.py  one-event summaries (`event_summary`)
  atomic.py   atomic file writes; lock.py: one process per run directory
"""
