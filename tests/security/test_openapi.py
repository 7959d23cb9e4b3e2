"""Every route of the server's own /openapi.json, fuzzed by schemathesis against the real
server as each kind of caller (``CALLERS``), with valid and invalid data: no answer is a
server error (5xx), every status answered is one the document lists for the route, and
every answer fits the document (an error has the one error shape)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import CALLERS, Lab

# Per route, caller and kind of data (valid, invalid): a few in CI (the five callers take
# about 65 s in all); RUNYARD_FUZZ_EXAMPLES=40 for a deeper search now and then.
MAX_EXAMPLES = int(os.environ.get("RUNYARD_FUZZ_EXAMPLES", "4"))
CLAIM_WAIT_SECONDS = 0.05  # a claim's long poll, cut short so that fuzzing stays quick
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZING = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same requests on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_route_answers_without_server_error_and_as_documented(caller: str, lab: Lab) -> None:
    """One fresh server per caller, the routes in the document's order: what one caller
    changes never reaches another, and a run is the same in any pytest process."""
    token = CALLERS[caller](lab)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{lab.url}/openapi.json")
    failures: list[str] = []
    operations = [found.ok() for found in schema.get_all_operations()]
    # Rotating the admin token ends the admin caller's token: that route is fuzzed last.
    operations.sort(key=lambda operation: operation.path == "/api/tokens/admin/rotate")
    for operation in operations:
        if caller == "userdata" and not operation.path.startswith("/api/userdata/"):
            continue  # elsewhere it is one more unknown token, as anonymous is fuzzed
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, lab, headers)
            except Unsatisfiable:  # nothing of the route can be made invalid
                pass
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value} data): {exc}")
    assert not failures, f"{len(failures)} routes failed as {caller}:\n\n" + "\n\n".join(failures)


def fuzz(operation: Any, mode: GenerationMode, lab: Lab, headers: dict[str, str]) -> None:
    @FUZZING
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def call(case: Any, real: bool) -> None:
        if real:  # name real objects too, not only random ones
            for parameters in (case.path_parameters, case.query):
                for key in set(parameters or {}) & set(lab.objects):
                    parameters[key] = lab.objects[key]
        if case.path == "/api/workers/claim" and isinstance(case.body, dict):
            case.body["wait"] = CLAIM_WAIT_SECONDS
        if case.path.endswith("/events"):
            check_stream(case, lab.url, headers)
        else:
            case.call_and_validate(base_url=lab.url, headers=headers, checks=CHECKS, timeout=30)

    call()


def check_stream(case: Any, url: str, headers: dict[str, str]) -> None:
    """A Server-Sent Events stream does not end: judge its status alone."""
    kwargs = case.as_transport_kwargs(base_url=url, headers=headers)
    with requests.request(**kwargs, stream=True, timeout=30) as response:
        documented = case.operation.definition.raw["responses"]
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: server error"
        assert str(response.status_code) in documented, (
            f"{case.method} {case.formatted_path}: status {response.status_code} is not "
            f"documented (only {', '.join(documented)})"
        )
