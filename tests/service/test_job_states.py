"""A job's state is one enum whose words are the API's: the JSON and the OpenAPI document agree."""

from __future__ import annotations

import json

from controller.service.app import OPENAPI
from controller.service.jobs import UNFINISHED, Job, JobState


def test_the_openapi_document_lists_exactly_the_enums_words():
    document = json.loads(OPENAPI.read_text())
    assert document["components"]["schemas"]["Job"]["properties"]["state"]["enum"] == [
        s.value for s in JobState]


def test_a_jobs_json_shows_its_state_as_the_plain_word():
    job = Job(1, "discover", {}, "tester")
    text = json.dumps(job.as_dict())
    assert json.loads(text)["state"] == "queued"
    assert f"{job.state}" == "queued" and job.state == "queued"


def test_only_queued_running_and_waiting_jobs_are_unfinished():
    assert {s.value for s in UNFINISHED} == {"queued", "running", "waiting"}
