"""Property-based: schemathesis generates requests from the app's own OpenAPI schema; no
answer may be a 5xx, use an undocumented status code or break its documented schema.

Real redis-server and nx-27017 behind the app; a bounded number of examples per operation.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.main import app
from tests.utils.api import API_KEY, clear_caches
from tests.utils.documents import stored_run

EXAMPLES_PER_OPERATION = 25

# The schema as /openapi.json serves it; requests go to the app in-process (ASGI), whose
# lifespan then runs with the fixture's settings.
schema = schemathesis.openapi.from_dict(app.openapi())
schema.app = app


@pytest.fixture
def fuzz_env(client, db, monkeypatch):
    """Settings in place, over a store that holds a few runs (generated ids rarely hit them;
    the schema's examples do)."""
    monkeypatch.setenv("PADDY_PREDICT_TIMEOUT_S", "0.5")
    clear_caches()
    stored_run(db, "3f9a1c0b2d4e", epochs=2)
    stored_run(db, "7c21e5a09b13", epochs=3)


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_schema(fuzz_env, case):
    case.call_and_validate(
        headers={"X-API-Key": API_KEY},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
