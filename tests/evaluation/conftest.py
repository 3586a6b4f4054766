# The fake exports are the inference tests' session fixtures, shared rather than redefined.
from tests.inference.conftest import fake_batched, fake_boxrel  # noqa: F401
