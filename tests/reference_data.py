"""The one way tests find reference data from `../shared/data` (beside the repository).

In CI (`CI=true`) missing data is a failure: CI always has `../shared`. On a
clone without it, the test is skipped with one line naming the folder to fetch.
Small sets copied into `tests/data/` are found there first.
"""

import os

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
SHARED_DATA = os.path.normpath(os.path.join(TESTS, os.pardir, os.pardir, "shared", "data"))
LOCAL_DATA = os.path.join(TESTS, "data")


def shared_data_path(relative):
    """The path of `../shared/data/<relative>` (nothing checked)."""
    return os.path.join(SHARED_DATA, relative)


def reference_data(relative, local=None):
    """The path of a reference file or folder; fails in CI, skips elsewhere, when missing.

    Args:
        relative: path under `../shared/data`.
        local: name of a copy under `tests/data/` that is used first.
    """
    if local is not None and os.path.exists(os.path.join(LOCAL_DATA, local)):
        return os.path.join(LOCAL_DATA, local)
    path = shared_data_path(relative)
    if os.path.exists(path):
        return path
    message = f"reference data missing: {path} (fetch the project's shared/data folder beside it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def requires(relative):
    """A test mark for `reference_data`'s rule: skip, with one line naming the missing path,
    on a clone without `../shared`; in CI the test runs (and fails on the missing data)."""
    path = shared_data_path(relative)
    missing = not os.path.exists(path) and os.environ.get("CI", "").lower() != "true"
    return pytest.mark.skipif(
        missing, reason=f"reference data missing: {path} (fetch the project's shared/data folder)"
    )
