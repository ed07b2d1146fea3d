"""The agent against a server that behaves like gooseBit: SHA-1 only and the package inside a
``.swu``.  The download resumes, is sealed under its SHA-256, the container is unwrapped and
the inner package installed by its own SHA-256 after its signature check; a damaged download
or a container that is not the simple one ledwarden writes ends as failure, nothing kept."""

from __future__ import annotations

import hashlib

import pytest

from controller.fleet.ddi import DdiError, parse_deployment
from controller.fleet.swu import _entry, wrap
from support.ddi_server import Action, DdiServer
from test_ddi_agent import firmware, rig, run  # noqa: F401  (rig is a fixture)


def test_a_sha1_only_swu_artifact_resumes_unwraps_and_installs_the_inner_package(rig):  # noqa: F811
    fw = firmware(rig["tmp"], rig["key"])
    swu = wrap(fw, rig["tmp"] / "fw.swu", version="2.0.0", hardware="default")
    server = DdiServer(action=Action("40", [swu]), sha1_only=True, cut_once_after=70_000)

    async def body(agent):
        with pytest.raises(Exception, match="resumes there"):
            await agent.step()
        await agent.step()
        await agent.step()
    inst = run(rig, server, body)
    inner = hashlib.sha256(fw.read_bytes()).hexdigest()
    assert inst.installed == [("card-firmware", inner)]
    assert server.ranges and server.ranges[0] != "bytes=0-"
    (final,) = server.closed()
    assert final["result"]["finished"] == "success"
    details = [d for _, fb in server.feedback for d in fb["status"].get("details", [])]
    assert any("SHA-1 matches" in d for d in details)
    assert sorted(p.name for p in (rig["state"] / "uploads").iterdir()) == [inner]


def test_a_sha1_that_does_not_match_ends_as_failure_and_keeps_nothing(rig):  # noqa: F811
    fw = firmware(rig["tmp"], rig["key"])
    swu = wrap(fw, rig["tmp"] / "fw.swu", version="2.0.0", hardware="default")
    server = DdiServer(action=Action("41", [swu]), sha1_only=True, wrong_hash=True)

    async def body(agent):
        await agent.step()
    inst = run(rig, server, body)
    assert inst.installed == []
    (final,) = server.closed()
    assert final["result"]["finished"] == "failure" and "SHA-1" in final["details"][0]
    assert not list((rig["state"] / "uploads").iterdir())


def test_a_container_with_two_files_is_refused_before_any_signature_is_believed(rig):  # noqa: F811
    fw = firmware(rig["tmp"], rig["key"])
    odd = rig["tmp"] / "odd.swu"
    odd.write_bytes(_entry("sw-description", b'software = { version = "2.0.0"; };', 1) +
                    _entry("fw.lwpkg", fw.read_bytes(), 2) + _entry("extra.sh", b"rm -rf /", 3) +
                    _entry("TRAILER!!!", b"", 0, mode=0))
    server = DdiServer(action=Action("42", [odd]), sha1_only=True)

    async def body(agent):
        await agent.step()
    inst = run(rig, server, body)
    assert inst.installed == []
    (final,) = server.closed()
    assert final["result"]["finished"] == "failure"
    assert "refused (container)" in final["details"][0] and "holds 2 files" in final["details"][0]
    assert not list((rig["state"] / "uploads").iterdir())


def test_an_artifact_with_neither_sha256_nor_sha1_is_refused():
    doc = {"id": "7", "deployment": {"chunks": [{"artifacts": [
        {"filename": "fw.swu", "size": 10, "hashes": {"md5": "0" * 32},
         "_links": {"download": {"href": "http://127.0.0.1:1/x"}}}]}]}}
    with pytest.raises(DdiError, match="no SHA-256 or SHA-1 hash"):
        parse_deployment(doc)
