"""Deep Sets / particle-flow network student, no teacher.

    gnntrack train --config experiments/jets/student_pfn.py --workdir runs/jets_student_pfn
"""

from gnntrack.configs.jets import jets_config


def get_config():
    return jets_config("jet_pfn")
