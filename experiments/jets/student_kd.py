"""Fully connected student distilled from a teacher's run, on 10 % of the training jets.

    gnntrack train --config experiments/jets/student_kd.py --workdir runs/jets_student_kd \
        --config.data.jets.teacher_dir=runs/jets_particlenet_lite

The teacher's logits on every jet are computed once from its config.json and newest checkpoint
and cached in this run's data cache. Also set: task.T, task.lambda, task.lambda_decay,
data.jets.fraction; --config.model.name=jet_pfn distils into the PFN.
"""

from gnntrack.configs.jets import student_kd_config


def get_config():
    return student_kd_config(teacher_dir="runs/jets_particlenet_lite")
