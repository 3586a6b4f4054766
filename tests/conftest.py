"""Shared pytest set-up. Markers are registered here, so the top level needs no pytest.ini."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model or builds an environment (minutes)")
    config.addinivalue_line("markers", "tfod: needs the TFOD2 environment (.venv-tfod); run by `make test-tfod`")


# Heavy shared fixtures (a tiny trained Model Garden model and its export, built once per
# session) live in tests/garden_fixtures.py, owned by the engine tests; imported here so every
# test folder can use them.
from tests.garden_fixtures import *  # noqa: E402,F401,F403
