"""The quickstart: HEP.TrkX segment classifier on simulated barrel, pT > 1 GeV graphs.

`gnntrack quickstart` runs exactly this config; `gnntrack train --config experiments/quickstart.py
--workdir RUN` does the same without the report. The values live in
`gnntrack.configs.quickstart.quickstart_config` so the installed package carries them.
"""

from gnntrack.configs.quickstart import quickstart_config


def get_config():
    return quickstart_config()
