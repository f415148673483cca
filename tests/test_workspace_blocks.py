"""Workspaces reach the blocks: a training step of a net with blocks allocates no arrays after the first."""
import copy
import tracemalloc

import numpy as np
import pytest

import layerkit as lk

DTYPES = [np.float32, np.float64]


def residual_net(dtype, width=16):
    rng = np.random.default_rng(0)
    block = lambda: lk.Residual([lk.Linear(width, width, rng=rng, dtype=dtype), lk.ReLU(),  # noqa: E731
                                 lk.Linear(width, width, rng=rng, dtype=dtype)])
    return lk.Net([lk.Linear(6, width, rng=rng, dtype=dtype), block(), lk.ReLU(), block(),
                   lk.Linear(width, 2, rng=rng, dtype=dtype)])


def nested_net(dtype):
    rng = np.random.default_rng(1)
    L = lambda i, o: lk.Linear(i, o, rng=rng, dtype=dtype)  # noqa: E731
    inner = lk.Net([L(8, 8), lk.Tanh(), lk.Residual([L(8, 8), lk.ReLU(), L(8, 8)])])
    return lk.Net([L(6, 8), lk.Residual([inner, L(8, 8)]), lk.ReLU(),
                   lk.Concatenate([[L(8, 4), lk.ReLU()], [L(8, 3)], [lk.Residual([L(8, 8)])]]), lk.Tanh(),
                   lk.Add([[L(15, 5)], [L(15, 5), lk.Sigmoid()]]), L(5, 2)])


def blocks_only_net(dtype):
    rng = np.random.default_rng(2)
    L = lambda i, o: lk.Linear(i, o, rng=rng, dtype=dtype)  # noqa: E731
    return lk.Net([lk.Residual([L(6, 6), lk.ReLU()]), lk.Net([L(6, 4), lk.Tanh(), L(4, 2)])])


NETS = {"residual": residual_net, "nested": nested_net, "blocks_only": blocks_only_net}


def data(dtype, n=32):
    rng = np.random.default_rng(3)
    return rng.normal(size=(n, 6)).astype(dtype), rng.normal(size=(n, 2)).astype(dtype)


def train(net, x, dy, steps, workspace):
    outputs = []
    for _ in range(steps):
        y, trace = net.forward(x, workspace=workspace)
        outputs.append(y.copy())
        net.backward(trace, dy, input_grad=False)
        net.step(0.05)
    return outputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(NETS))
def test_a_training_step_of_a_net_with_blocks_allocates_no_arrays(kind, dtype):
    net = NETS[kind](dtype)
    x, dy = data(dtype, 2048)
    ws = net.workspace()

    def step():
        y, trace = net.forward(x, workspace=ws)
        net.backward(trace, dy, input_grad=False)
        net.step(0.01)
        return y

    y0 = step()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        y1 = step()
        after = tracemalloc.take_snapshot()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        y2 = step()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert y1 is y0 and y2 is y0  # the output lives in the workspace
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    stats = after.filter_traces([domain]).compare_to(before.filter_traces([domain]), "traceback")
    assert sum(stat.count_diff for stat in stats if stat.count_diff > 0) == 0
    one_array = 2048 * 2 * np.dtype(dtype).itemsize  # the narrowest activation (the output)
    assert peak < one_array, f"a step allocated up to {peak} bytes (one input-sized array is {one_array})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(NETS))
def test_training_with_a_workspace_is_bit_identical_to_training_without(kind, dtype):
    net = NETS[kind](dtype)
    reference = copy.deepcopy(net)
    x, dy = data(dtype)
    with_ws = train(net, x, dy, 4, net.workspace())
    without = train(reference, x, dy, 4, None)
    for a, b in zip(with_ws, without):
        np.testing.assert_array_equal(a, b)
    for (name, a), b in zip(net.walk(), (layer for _, layer in reference.walk())):
        for attr in getattr(a, "param_names", ()):
            if "." not in attr:
                np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=f"{name}.{attr}")
                np.testing.assert_array_equal(getattr(a, "d" + attr), getattr(b, "d" + attr))


@pytest.mark.parametrize("kind", sorted(NETS))
def test_input_gradients_with_a_workspace_equal_those_without(kind):
    net = NETS[kind](np.float64)
    x, dy = data(np.float64)
    y, trace = net.forward(x, workspace=net.workspace())
    dx = net.backward(trace, dy, input_grad=True)
    y_ref, trace_ref = net.forward(x)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, net.backward(trace_ref, dy, input_grad=True))


@pytest.mark.parametrize("kind", sorted(NETS))
def test_a_trace_of_a_net_with_blocks_is_refused_after_the_workspace_is_reused(kind):
    net = NETS[kind](np.float64)
    x, dy = data(np.float64)
    ws = net.workspace()
    _, trace = net.forward(x, workspace=ws)
    net.forward(x[::-1].copy(), workspace=ws)
    with pytest.raises(RuntimeError, match="workspace was used by a later forward pass"):
        net.backward(trace, dy)


@pytest.mark.parametrize("kind", sorted(NETS))
def test_passes_without_a_workspace_interleaved_with_workspace_passes_stay_correct(kind):
    net = NETS[kind](np.float64)
    x, dy = data(np.float64)
    x2 = x[::-1].copy()
    y_ref, trace_ref = net.forward(x)
    dx_ref = net.backward(trace_ref, dy, input_grad=True)
    y2_ref, trace2_ref = net.forward(x2)
    dx2_ref = net.backward(trace2_ref, dy, input_grad=True)

    ws = net.workspace()
    y, trace = net.forward(x, workspace=ws)
    y2, trace2 = net.forward(x2)  # in flight together: the second allocates its own arrays
    dx2 = net.backward(trace2, dy, input_grad=True)
    dx = net.backward(trace, dy, input_grad=True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(y2, y2_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(dx2, dx2_ref)


def test_the_trace_of_a_block_reads_the_inner_inputs_of_the_workspace_pass():
    net = nested_net(np.float64)
    x, _ = data(np.float64)
    _, trace = net.forward(x, workspace=net.workspace())
    _, reference = net.forward(x)
    ours, theirs = dict(trace.walk()), dict(reference.walk())
    assert ours.keys() == theirs.keys() and "1.f.0.2.f.0" in ours
    for path in ours:
        np.testing.assert_array_equal(ours[path].x, theirs[path].x, err_msg=path)


def test_an_output_of_a_blocks_only_net_fed_back_in_is_not_overwritten():
    rng = np.random.default_rng(4)
    net = lk.Net([lk.Residual([lk.Linear(5, 5, rng=rng), lk.Tanh()]), lk.Residual([lk.Linear(5, 5, rng=rng)])])
    x = rng.normal(size=(7, 5))
    ws = net.workspace()
    y, _ = net.forward(x, workspace=ws)
    y_again, _ = net.forward(y, workspace=ws)
    np.testing.assert_array_equal(y_again, net.predict(net.predict(x)))


def test_a_block_whose_inner_layers_change_gets_new_buffers():
    net = residual_net(np.float64)
    x, dy = data(np.float64)
    ws = net.workspace()
    net.backward(net.forward(x, workspace=ws)[1], dy)
    before = ws.nbytes
    net[1].f.layers[1] = lk.Tanh()  # the inner net is recompiled: its old buffers are dropped
    y, trace = net.forward(x, workspace=ws)
    np.testing.assert_array_equal(y, net.predict(x))
    np.testing.assert_array_equal(net.backward(trace, dy, input_grad=True), net.backward(net.forward(x)[1], dy, input_grad=True))
    assert ws.nbytes == before  # the same sizes, made again (not kept twice)
