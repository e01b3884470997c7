"""Anomaly detection (gt/autograd/anomaly.py) beside torch's: the NaN check's error and its
index, the warning that gives a failing op's forward traceback, check_nan=False, the ways to
turn the mode on and off, both walks (plain and create_graph), gt.autograd.grad, sharded inputs."""

import re
import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard
from helpers import torch_or_skip


@pytest.fixture(autouse=True)
def _mode_off():
    yield
    gt.autograd.set_detect_anomaly(False)


def _plain(message):
    """torch's node names end in a version digit (SqrtBackward0); gt's do not."""
    return re.sub(r"Backward\d", "Backward", message)


def _error(fn, module, anomaly):
    """The RuntimeError message and the warnings of ``fn(module)``'s backward under ``anomaly``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with anomaly(module):
            try:
                fn(module)
            except RuntimeError as e:
                return _plain(str(e)), [str(w.message) for w in caught]
    return None, [str(w.message) for w in caught]


def _sqrt_at_zero(m):
    x = m.tensor([0.0, 4.0], requires_grad=True)
    (x.sqrt() * 0.0).sum().backward()   # 0 / (2 sqrt(0)): NaN


def _div_zero_by_zero(m):
    x = m.tensor([0.0, 1.0], requires_grad=True)
    y = m.tensor([0.0, 2.0], requires_grad=True)
    (x / y).sum().backward()


@pytest.mark.parametrize("fn", [_sqrt_at_zero, _div_zero_by_zero], ids=["sqrt", "div"])
def test_nan_gradient_is_torch_s_error(fn):
    torch = torch_or_skip()
    on = lambda m: m.autograd.detect_anomaly()   # noqa: E731
    got, got_warnings = _error(fn, gt, on)
    want, want_warnings = _error(fn, torch, on)
    assert want is not None and got == want      # the op and the input's index (1 for div's divisor)
    assert any(w.startswith("Anomaly Detection has been enabled") for w in got_warnings)
    assert any(w.startswith("Error detected in " + want.split("'")[1]) for w in got_warnings)


def test_without_the_mode_or_without_check_nan_the_nan_flows_on_as_in_torch():
    torch = torch_or_skip()
    for on in (lambda m: m.autograd.set_detect_anomaly(False), lambda m: m.autograd.detect_anomaly(check_nan=False)):
        got, _ = _error(_sqrt_at_zero, gt, on)
        want, _ = _error(_sqrt_at_zero, torch, on)
        assert got is None and want is None
    x = gt.tensor([0.0, 4.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with gt.autograd.detect_anomaly(check_nan=False):
            (x.sqrt() * 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [np.nan, 0.0])


def test_a_failing_backward_is_traced_to_the_forward_line_that_made_it():
    class Boom(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    x = gt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        mode = gt.autograd.detect_anomaly()
    with mode, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = Boom.apply(x).sum()   # the line the warning must name
        with pytest.raises(ValueError, match="boom"):
            y.backward()
    messages = [str(w.message) for w in caught if "Error detected" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("Error detected in BoomBackward. Traceback of forward call that caused the error:")
    assert "y = Boom.apply(x).sum()   # the line the warning must name" in messages[0]
    assert "test_anomaly.py" in messages[0]


def test_an_op_recorded_before_the_mode_says_so():
    x = gt.tensor([0.0], requires_grad=True)
    y = (x.sqrt() * 0.0).sum()
    with gt.autograd.set_detect_anomaly(True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="SqrtBackward' returned nan"):
            y.backward()
    assert any("No forward pass information available" in str(w.message) for w in caught)


def test_turning_the_mode_on_and_off_as_torch():
    torch = torch_or_skip()
    for m in (gt, torch):
        seen = [m.is_anomaly_enabled()]
        with m.autograd.set_detect_anomaly(True, check_nan=False):
            seen += [m.is_anomaly_enabled(), m.is_anomaly_check_nan_enabled()]
        seen += [m.is_anomaly_enabled(), m.is_anomaly_check_nan_enabled()]
        m.autograd.set_detect_anomaly(True)          # at once, without a with block
        seen.append(m.is_anomaly_enabled())
        m.autograd.set_detect_anomaly(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mode = m.autograd.detect_anomaly()
        seen.append(m.is_anomaly_enabled())          # detect_anomaly: only inside its block
        with mode:
            seen.append(m.is_anomaly_enabled())
        seen.append(m.is_anomaly_enabled())
        m.set_anomaly_enabled(True)
        seen.append(m.is_anomaly_enabled())
        m.set_anomaly_enabled(False)
        if m is gt:
            got = seen
        else:
            assert got == seen == [False, True, False, False, True, True, False, True, False, True]


@pytest.mark.first_pass
def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="anomaly mode: expected True or False, got 'yes'"):
        gt.autograd.set_detect_anomaly("yes")
    with pytest.raises(TypeError, match="check_nan: expected True or False, got 1"):
        gt.autograd.set_detect_anomaly(True, check_nan=1)
    assert not gt.is_anomaly_enabled()


def test_autograd_grad_and_the_recording_walk_check_too():
    x = gt.tensor([0.0, 1.0], requires_grad=True)
    with gt.autograd.set_detect_anomaly(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward' returned nan values in its 0th output."):
            gt.autograd.grad((x.sqrt() * 0.0).sum(), x)
        # first derivative 1/(2 sqrt(x)) is finite at x = 1 only; the second walk records it
        x1 = gt.tensor([0.0, 1.0], requires_grad=True)
        (g,) = gt.autograd.grad((x1 * x1).sum(), x1, create_graph=True)
        (gg,) = gt.autograd.grad(g.sum(), x1)
        np.testing.assert_array_equal(gg.numpy(), [2.0, 2.0])
        with pytest.raises(RuntimeError, match="returned nan values"):
            gt.autograd.grad((x.sqrt() * 0.0).sum(), x, create_graph=True)


@pytest.mark.own_mesh
def test_a_sharded_batch_is_checked():
    values = np.array([[0.0, 1.0], [4.0, 9.0], [1.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    with use_mesh(2):
        leaf = gt.tensor(values, requires_grad=True)
        x = leaf.shard(0)
        assert x.placement == Shard(0)
        with gt.autograd.set_detect_anomaly(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="returned nan values in its 0th output"):
                (x.sqrt() * 0.0).sum().backward()
        leaf2 = gt.tensor(values + 1, requires_grad=True)
        with gt.autograd.set_detect_anomaly(True):
            leaf2.shard(0).sqrt().sum().backward()
        np.testing.assert_allclose(leaf2.grad.numpy(), 0.5 / np.sqrt(values + 1), rtol=1e-6)
