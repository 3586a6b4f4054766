import pytest

from tests.inference.fake_export import fake_export


@pytest.fixture(scope="session")
def fake_boxrel(tmp_path_factory):
    return fake_export(tmp_path_factory, "boxrel")


@pytest.fixture(scope="session")
def fake_batched(tmp_path_factory):
    return fake_export(tmp_path_factory, "batched")
