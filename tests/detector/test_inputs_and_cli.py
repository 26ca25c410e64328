"""--from-particles input, `gnntrack simulate` determinism and its errors."""

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.detector.particles import generate_particles, read_particles_file
from gnntrack.detector.simulate import default_simulation_config, event_rng, simulate_event, simulate_events
from gnntrack.errors import InputError


@pytest.fixture(scope="module")
def particles():
    config = default_simulation_config()
    config.n_particles = 150
    return generate_particles(np.random.default_rng(4), config)


@pytest.mark.parametrize("with_type", [True, False])
def test_from_particles_file(tmp_path, particles, with_type):
    table = particles if with_type else particles.drop(columns=["particle_type"])
    path = tmp_path / "event000000001-particles.csv"
    table.to_csv(path, index=False)
    loaded = read_particles_file(path)
    np.testing.assert_array_equal(loaded.particle_id, particles.particle_id)
    if not with_type:
        assert (loaded.particle_type == 0).all()           # unknown species -> pion mass
    ev = simulate_event(loaded, np.random.default_rng(0), default_simulation_config())
    assert ev.particles.nhits.sum() > 5 * len(particles)
    np.testing.assert_array_equal(ev.particles.particle_id, particles.particle_id)


def _write(tmp_path, text, name="particles.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits\n"


@pytest.mark.parametrize("text, needle", [
    ("particle_id,vx,vy,vz,px,py,q,nhits\n1,0,0,0,1,0,1,0\n", "pz"),
    (HEADER + "1,211,0,0,0,1,0,,1,0\n", "pz"),
    (HEADER + "1,211,0,0,0,1,0,abc,1,0\n", "pz"),
    (HEADER + "1,211,0,0,0,inf,0,1,1,0\n", "px"),
    (HEADER + "1,211,0,0,0,1,0,0,1,0\n1,211,0,0,0,1,0,0,1,0\n", "particle_id"),
    (HEADER + "0,211,0,0,0,1,0,0,1,0\n", "particle_id"),
    ("", "empty"),
    (HEADER, "no particles"),
])
def test_bad_particles_file(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_particles_file(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_missing_particles_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_particles_file(tmp_path / "nope.csv")


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_cli_same_seed_identical_files(tmp_path, capsys):
    args = ["simulate", "--events", "2", "--n-particles", "120", "--seed", "9", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(a) == {"event000001000-hits.csv", "event000001000-truth.csv", "event000001000-particles.csv",
                      "event000001001-hits.csv", "event000001001-truth.csv", "event000001001-particles.csv",
                      "simulation.json"}
    assert a == b  # same seed, same program, same machine: byte-identical files
    assert main(["simulate", "--events", "1", "--n-particles", "120", "--seed", "10", "--no-progress",
                 "--out", str(tmp_path / "c")]) == 0
    assert _files(tmp_path / "c")["event000001000-hits.csv"] != a["event000001000-hits.csv"]


def test_event_k_independent_of_event_count(tmp_path):
    config = default_simulation_config()
    config.n_particles = 80
    simulate_events(tmp_path / "one", 1, config, seed=3)
    simulate_events(tmp_path / "three", 3, config, seed=3, compress=True)
    simulate_events(tmp_path / "three_plain", 3, config, seed=3)
    one, three = _files(tmp_path / "one"), _files(tmp_path / "three_plain")
    for name, data in one.items():
        assert three[name] == data
    from gnntrack.io.trackml import read_event

    ev = read_event(tmp_path / "three" / "event000001002")
    rng = event_rng(3, 2)
    direct = simulate_event(generate_particles(rng, config), rng, config, event_id=1002)
    # an event's own random stream and the same computation, alone or within a run: bitwise
    np.testing.assert_array_equal(ev.hits.x.to_numpy(), direct.hits.x.to_numpy())
    np.testing.assert_array_equal(ev.truth.weight.to_numpy(), direct.truth.weight.to_numpy())


def test_cli_from_particles_and_errors(tmp_path, particles, capsys):
    path = tmp_path / "p.csv"
    particles.to_csv(path, index=False)
    assert main(["simulate", "--out", str(tmp_path / "o"), "--from-particles", str(path), "--no-progress",
                 "--noise-fraction", "0.2", "--compress"]) == 0
    assert (tmp_path / "o" / "event000001000-hits.csv.gz").exists()
    bad = _write(tmp_path, "particle_id,vx\n1,0\n", "bad.csv")
    assert main(["simulate", "--out", str(tmp_path / "x"), "--from-particles", str(bad), "--no-progress"]) == 2
    assert "bad.csv" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path / "x"), "--noise-fraction", "1.5", "--no-progress"]) == 2
    assert "noise_fraction" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path / "x"), "--set", "no_such_key=1", "--no-progress"]) == 2


def test_simulate_event_rejects_bad_particle_ids(particles):
    bad = particles.copy()
    bad.loc[0, "particle_id"] = 0
    with pytest.raises(InputError, match="particle_id"):
        simulate_event(bad, np.random.default_rng(0), default_simulation_config())
    with pytest.raises(InputError, match="pz"):
        simulate_event(particles.drop(columns=["pz"]), np.random.default_rng(0), default_simulation_config())
