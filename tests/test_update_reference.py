"""The SAC update's numbers, pinned: twenty updates per method and network shape must reproduce the recorded
per-task losses and final parameters (see `tests/update_reference.py`). On the machine that recorded them
they reproduce bit for bit; the tolerance leaves room for another CPU's order of floating-point sums."""

import pytest
import torch

from tests.update_reference import CASES, REFERENCE, run_updates


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE)


@pytest.mark.parametrize("case", sorted(CASES))
def test_updates_reproduce_the_recorded_numbers(case, reference):
    method, overrides = CASES[case]
    got, expected = run_updates(method, overrides), reference[case]
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=lambda m: f"{case} {name}: {m}")
