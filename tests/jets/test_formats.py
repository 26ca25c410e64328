"""Jet files: tiny files with exactly the public field names are read into JetArrays (GeV, sorted by
pT, zero-padded), bad files give one InputError naming the file and the field."""

import h5py
import numpy as np
import pandas as pd
import pytest

from gnntrack.errors import InputError
from gnntrack.jets.formats import reference_columns, read_jets, write_reference_h5
from gnntrack.jets.types import JetArrays


def four_vector(pt, eta, phi, m=0.0):
    """(E, px, py, pz) of (pt, eta, phi, m), float64 arrays."""
    pt, eta, phi = np.asarray(pt, float), np.asarray(eta, float), np.asarray(phi, float)
    return np.stack([np.sqrt((pt * np.cosh(eta)) ** 2 + m ** 2), pt * np.cos(phi), pt * np.sin(phi),
                     pt * np.sinh(eta)], axis=-1)


def tiny_jets():
    """Two jets with 3 constituent slots: jet 0 has 2 constituents (the softer first), jet 1 has 1."""
    constituents = np.zeros((2, 3, 4), np.float32)
    constituents[0, 0] = four_vector(10.0, 0.1, 0.2)
    constituents[0, 1] = four_vector(50.0, 0.0, 0.0)
    constituents[1, 0] = four_vector(30.0, -1.0, 3.0)
    jet = constituents.sum(axis=1)
    return JetArrays(constituents, np.array([1, 0], np.int8), np.ones(2, np.float32), jet)


def test_reference_round_trip_has_the_public_columns_and_sorts_by_pt(tmp_path):
    jets = tiny_jets()
    truth = np.array([[700.0, 600.0, 0.0, 10.0], [0, 0, 0, 0]], np.float32)
    path = write_reference_h5(tmp_path / "ref.h5", jets, truth)
    frame = pd.read_hdf(path, key="table")
    assert list(frame.columns) == reference_columns(3)
    assert list(frame.columns[:8]) == ["E_0", "PX_0", "PY_0", "PZ_0", "E_1", "PX_1", "PY_1", "PZ_1"]
    assert list(frame.columns[-6:]) == ["truthE", "truthPX", "truthPY", "truthPZ", "ttv", "is_signal_new"]
    np.testing.assert_array_equal(frame[["truthE", "truthPX"]].to_numpy()[0], [700.0, 600.0])
    back = read_jets(path)
    np.testing.assert_array_equal(back.label, [1, 0])
    # the harder constituent comes first; values are the float32 written (bitwise: no arithmetic)
    np.testing.assert_array_equal(back.constituents[0, 0], jets.constituents[0, 1])
    np.testing.assert_array_equal(back.constituents[0, 1], jets.constituents[0, 0])
    np.testing.assert_array_equal(back.constituents[:, 2], 0.0)
    np.testing.assert_allclose(back.jet, jets.jet, rtol=1e-6)
    np.testing.assert_array_equal(back.n_constituents, [2, 1])


def test_reference_writer_gives_the_same_bytes_for_the_same_jets(tmp_path):
    # creation times and the PyTables index would make two writes of the same data differ
    a = write_reference_h5(tmp_path / "a.h5", tiny_jets())
    b = write_reference_h5(tmp_path / "b.h5", tiny_jets())
    assert a.read_bytes() == b.read_bytes()


def test_a_hand_made_reference_table_is_read(tmp_path):
    columns = reference_columns(2)
    values = np.zeros((1, len(columns)))
    values[0, :4] = four_vector(20.0, 0.5, 0.0)
    values[0, -1] = 1
    pd.DataFrame(values, columns=columns).to_hdf(tmp_path / "test.h5", key="table", format="table")
    jets = read_jets(tmp_path / "test.h5")
    assert jets.constituents.shape == (1, 2, 4) and jets.label.tolist() == [1]
    np.testing.assert_allclose(jets.constituents[0, 0], four_vector(20.0, 0.5, 0.0), rtol=1e-6)


def test_reference_missing_column_names_it(tmp_path):
    columns = [c for c in reference_columns(2) if c != "PY_1"]
    pd.DataFrame(np.zeros((1, len(columns))), columns=columns).to_hdf(tmp_path / "r.h5", key="table")
    with pytest.raises(InputError, match=r"r\.h5: missing column PY_1"):
        read_jets(tmp_path / "r.h5")


def write_atlas(path, drop=(), nan=None):
    """A 2-jet ATLAS open-data file in MeV: jet 0 has two constituents (softer first), jet 1 one."""
    clus = {"fjet_clus_pt": [[20e3, 80e3, 0], [50e3, 0, 0]], "fjet_clus_eta": [[0.1, -0.1, 0], [1.0, 0, 0]],
            "fjet_clus_phi": [[0.3, 0.0, 0], [-3.0, 0, 0]]}
    clus["fjet_clus_E"] = (np.array(clus["fjet_clus_pt"]) * np.cosh(clus["fjet_clus_eta"])).tolist()
    fields = {**clus, "fjet_pt": [600e3, 580e3], "fjet_eta": [0.0, 1.0], "fjet_phi": [0.1, -3.0],
              "fjet_m": [172e3, 30e3], "labels": [1, 0], "training_weights": [0.5, 2.0]}
    if nan:
        fields[nan] = np.array(fields[nan], float)
        fields[nan].flat[0] = np.nan
    with h5py.File(path, "w") as f:
        for name, value in fields.items():
            if name not in drop:
                f.create_dataset(name, data=np.asarray(value, np.float32))


def test_atlas_file_is_read_in_gev_with_weights(tmp_path):
    write_atlas(tmp_path / "atlas.h5")
    jets = read_jets(tmp_path / "atlas.h5")
    np.testing.assert_array_equal(jets.label, [1, 0])
    np.testing.assert_array_equal(jets.weight, [0.5, 2.0])
    np.testing.assert_allclose(jets.constituents[0, 0], four_vector(80.0, -0.1, 0.0), rtol=1e-5)
    np.testing.assert_allclose(jets.constituents[0, 1], four_vector(20.0, 0.1, 0.3), rtol=1e-5)
    np.testing.assert_array_equal(jets.constituents[1, 1:], 0.0)
    np.testing.assert_allclose(jets.jet[0], four_vector(600.0, 0.0, 0.1, 172.0), rtol=1e-5)


def test_atlas_file_without_training_weights_gets_weight_one(tmp_path):
    write_atlas(tmp_path / "test.h5", drop=("training_weights",))
    np.testing.assert_array_equal(read_jets(tmp_path / "test.h5").weight, [1.0, 1.0])


@pytest.mark.parametrize("field", ["fjet_clus_E", "fjet_m", "labels"])
def test_atlas_missing_field_names_file_and_field(tmp_path, field):
    write_atlas(tmp_path / "a.h5", drop=(field,))
    with pytest.raises(InputError, match=rf"a\.h5: missing field {field}"):
        read_jets(tmp_path / "a.h5")


def test_nan_is_an_input_error_naming_the_field(tmp_path):
    write_atlas(tmp_path / "a.h5", nan="fjet_clus_eta")
    with pytest.raises(InputError, match=r"a\.h5: field fjet_clus_eta has 1 NaN"):
        read_jets(tmp_path / "a.h5")


def write_jetnet(path, drop=()):
    """One JetNet jet (pt 1000, eta 0.5, mass 170) with two particles (the softer first) of 30 slots."""
    particles = np.zeros((1, 30, 4), np.float32)
    particles[0, 0] = [0.1, -0.2, 0.25, 1]
    particles[0, 1] = [-0.05, 0.1, 0.5, 1]
    with h5py.File(path, "w") as f:
        if "particle_features" not in drop:
            f.create_dataset("particle_features", data=particles)
        if "jet_features" not in drop:
            f.create_dataset("jet_features", data=np.array([[1000.0, 0.5, 170.0, 2]], np.float32))


def test_jetnet_relative_coordinates_become_four_vectors(tmp_path):
    write_jetnet(tmp_path / "t.hdf5")
    write_jetnet(tmp_path / "g.hdf5")
    jets = read_jets(tmp_path / "t.hdf5")
    # eta = eta_jet + eta_rel, phi = phi_rel (jet at phi 0), pt = pt_rel * pt_jet, massless
    np.testing.assert_allclose(jets.constituents[0, 0], four_vector(500.0, 0.45, 0.1), rtol=1e-5)
    np.testing.assert_allclose(jets.constituents[0, 1], four_vector(250.0, 0.6, -0.2), rtol=1e-5)
    np.testing.assert_allclose(jets.jet[0], four_vector(1000.0, 0.5, 0.0, 170.0), rtol=1e-5)
    assert jets.n_constituents.tolist() == [2]
    assert jets.label.tolist() == [1] and read_jets(tmp_path / "g.hdf5").label.tolist() == [0]
    assert read_jets(tmp_path / "g.hdf5", label=1).label.tolist() == [1]


def test_jetnet_missing_field_names_it(tmp_path):
    write_jetnet(tmp_path / "q.hdf5", drop=("jet_features",))
    with pytest.raises(InputError, match=r"q\.hdf5: missing field jet_features"):
        read_jets(tmp_path / "q.hdf5")


def test_unknown_or_broken_files_are_input_errors(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("hits", data=np.zeros(3))
    with pytest.raises(InputError, match=r"other\.h5: unknown jet file layout"):
        read_jets(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match=r"text\.h5: not an HDF5 file"):
        read_jets(tmp_path / "text.h5")
    with pytest.raises(InputError, match=r"absent\.h5: no such file"):
        read_jets(tmp_path / "absent.h5")
