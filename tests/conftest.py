"""Shared fixtures: PyTorch as the reference implementation.

Tests that compare against PyTorch take the `torch` fixture. Without torch they are skipped,
unless REQUIRE_TORCH=1 (as in CI), which turns a missing torch into a failure.
"""

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def torch():
    try:
        module = importlib.import_module("torch")
    except ImportError:
        if os.environ.get("REQUIRE_TORCH") == "1":
            pytest.fail("REQUIRE_TORCH=1 but torch is not installed (pip install torch==2.13.0)")
        pytest.skip("torch is not installed; set REQUIRE_TORCH=1 to make this a failure")
    return module
