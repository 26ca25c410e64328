"""Provenance records name the settings a timing depends on, the host allocator included."""

from gnntrack.runtime import host_allocator_label
from gnntrack.studies.provenance import device_info, provenance, provenance_markdown


def test_device_info_records_the_host_allocator():
    info = device_info()
    assert info["host_allocator"] == host_allocator_label()
    assert info["host_allocator"].split()[0] in ("hugepages", "default")
    assert info["n_devices"] >= 1 and info["platform"] == "cpu"


def test_markdown_shows_devices_and_allocator():
    prov = provenance({"model": {"hidden": 8}})
    text = provenance_markdown(prov)
    assert f"host allocator: {prov['devices']['host_allocator']}" in text
    assert prov["config"] == {"model": {"hidden": 8}}
