"""Blocks (Residual, Concatenate, Add, Net as a layer): outputs, gradients, traces, paths and training."""
import copy
import pickle
import re
import warnings

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.blocks import Add, Concatenate, Residual
from layerkit.blocks._branches import BranchTraces
from layerkit.optim import SGD, Adam, clip_grad_norm, global_grad_norm
from layerkit.testing import assert_grad

RNG = np.random.default_rng(0)


def lin(n_in, n_out, seed, dtype=np.float64):
    return lk.Linear(n_in, n_out, rng=seed, dtype=dtype)


def relu(z):
    return np.maximum(z, 0)


def residual_net(width=5, dtype=np.float64):
    """Linear(3, w), Residual(Linear, ReLU, Linear, ReLU), Linear(w, 2)."""
    block = Residual([lin(width, width, 1, dtype), lk.ReLU(), lin(width, width, 2, dtype), lk.ReLU()])
    return lk.Net([lin(3, width, 0, dtype), block, lin(width, 2, 3, dtype)])


def branch_net():
    """Concatenate of a linear branch and a two-layer branch, a residual block inside the second."""
    concat = Concatenate([[lin(3, 2, 1)],
                          [lin(3, 4, 2), lk.Tanh(), Residual([lin(4, 4, 3), lk.Sigmoid()])]])
    return lk.Net([concat, lin(6, 1, 4)])


# ---------------------------------------------------------------------- registry
@pytest.mark.parametrize("name, cls", [("residual", Residual), ("concatenate", Concatenate), ("add", Add),
                                       ("net", lk.Net)])
def test_blocks_register_through_entry_points(name, cls):
    assert registry.get(name) is cls
    assert registry.name_of(cls) == name
    assert isinstance(cls(**cls.example_kwargs), lk.Layer)


# ---------------------------------------------------------------------- outputs and gradients
def test_residual_equals_x_plus_f_and_its_gradients():
    net = residual_net()
    x = RNG.standard_normal((7, 3))
    y, trace = net.forward(x)
    h = x @ net[0].W + net[0].b
    f = net[1].f
    z1 = h @ f[0].W + f[0].b
    a1 = relu(z1)
    z2 = a1 @ f[2].W + f[2].b
    r = h + relu(z2)
    np.testing.assert_allclose(y, r @ net[2].W + net[2].b, rtol=1e-13, atol=1e-13)
    dy = RNG.standard_normal(y.shape)
    dx = net.backward(trace, dy, input_grad=True)
    dr = dy @ net[2].W.T
    dz2 = dr * (z2 > 0)
    np.testing.assert_allclose(f[2].dW, a1.T @ dz2, rtol=1e-12, atol=1e-13)
    dz1 = (dz2 @ f[2].W.T) * (z1 > 0)
    np.testing.assert_allclose(f[0].dW, h.T @ dz1, rtol=1e-12, atol=1e-13)
    dh = dr + dz1 @ f[0].W.T
    np.testing.assert_allclose(dx, dh @ net[0].W.T, rtol=1e-12, atol=1e-13)


def test_concatenate_and_add_join_their_branches():
    x = RNG.standard_normal((6, 3))
    a, b = lin(3, 2, 1), lin(3, 2, 2)
    concat = lk.Net([Concatenate([[a], [b, lk.Tanh()]])])
    y, trace = concat.forward(x)
    np.testing.assert_allclose(y, np.hstack([x @ a.W + a.b, np.tanh(x @ b.W + b.b)]), rtol=1e-14)
    dy = RNG.standard_normal(y.shape)
    dx = concat.backward(trace, dy, input_grad=True)
    zb = x @ b.W + b.b
    expected = dy[:, :2] @ a.W.T + (dy[:, 2:] * (1 - np.tanh(zb) ** 2)) @ b.W.T
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-14)

    add = lk.Net([Add([[a], [b, lk.Tanh()]])])
    y, trace = add.forward(x)
    np.testing.assert_allclose(y, x @ a.W + a.b + np.tanh(zb), rtol=1e-14)
    dx = add.backward(trace, dy[:, :2], input_grad=True)
    np.testing.assert_allclose(dx, dy[:, :2] @ a.W.T + (dy[:, :2] * (1 - np.tanh(zb) ** 2)) @ b.W.T, rtol=1e-12)


def test_a_net_is_a_layer_of_another_net():
    inner = lk.Net([lin(3, 4, 1), lk.ReLU(), lin(4, 3, 2)])
    outer = lk.Net([lin(3, 3, 0), inner, lk.Tanh()])
    flat = lk.Net([outer[0], *inner.layers, outer[2]])
    x = RNG.standard_normal((5, 3))
    y, trace = outer.forward(x)
    y_flat, trace_flat = flat.forward(x)
    np.testing.assert_array_equal(y, y_flat)
    assert isinstance(trace[1].ctx, lk.Trace) and trace[1].ctx[1].layer is inner[1]
    dy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(outer.backward(trace, dy, input_grad=True), flat.backward(trace_flat, dy, input_grad=True), rtol=1e-14)
    assert outer.param_names[2:4] == ("1.0.W", "1.0.b")


@pytest.mark.parametrize("make", [
    lambda: Residual([lin(4, 4, 0), lk.Tanh(), lin(4, 4, 1)]),
    lambda: Residual([lk.LayerNorm(4), lin(4, 4, 0)]),
    lambda: Concatenate([[lin(4, 2, 0), lk.Sigmoid()], [lin(4, 3, 1)], [lk.Tanh()]]),
    lambda: Add([[lin(4, 3, 0)], [lin(4, 3, 1), lk.ELU()]]),
    lambda: lk.Net([lin(4, 3, 0), lk.GELU(), lin(3, 2, 1)]),
    lambda: Residual([Concatenate([[lin(4, 2, 0)], [lin(4, 2, 1), lk.Tanh()]]), Residual([lin(4, 4, 2)])]),
    lambda: Residual([lk.BatchNorm1d(4), lk.Dropout(0.3, rng=0), lin(4, 4, 1)]),
])
def test_gradients_of_each_block_check(make):
    assert_grad(make(), RNG.standard_normal((6, 4)) * 0.7 + 0.05, seed=0)


@pytest.mark.parametrize("make", [residual_net, branch_net])
def test_gradients_of_whole_nets_check(make):
    net = make()
    for name in net.param_names:  # biases off zero: ReLU inputs away from their kink
        if name.endswith(".b"):
            setattr(net, name, RNG.uniform(0.1, 0.3, getattr(net, name).shape))
    assert_grad(net, RNG.standard_normal((6, 3)) * 0.7 + 0.05, seed=1)


def test_float32_blocks_stay_float32():
    net = residual_net(dtype=np.float32)
    y, trace = net.forward(RNG.standard_normal((4, 3)).astype(np.float32))
    assert y.dtype == np.float32 and net[1].dtype == np.float32
    assert net.backward(trace, np.ones_like(y), input_grad=True).dtype == np.float32


def test_fortran_and_list_inputs_give_the_same_result():
    net = residual_net()
    x = RNG.standard_normal((6, 3))
    expected = net.predict(x)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(net.predict(x.tolist()), expected)
    block = net[1]
    h = RNG.standard_normal((6, 5))
    np.testing.assert_array_equal(block.forward(np.asfortranarray(h)), block.forward(h))


# ---------------------------------------------------------------------- traces
def test_block_trace_entries_hold_the_inner_traces():
    net = branch_net()
    x = RNG.standard_normal((5, 3))
    _, trace = net.forward(x)
    ctx = trace[0].ctx
    assert isinstance(ctx, BranchTraces) and ctx.widths == (2, 4)
    deep = ctx.traces[1]
    assert deep[0].x is x or np.array_equal(deep[0].x, x)
    branch = net[0].branches[1]
    np.testing.assert_allclose(deep[2].x, np.tanh(x @ branch[0].W + branch[0].b), rtol=1e-14)
    inner_residual = deep[2].ctx
    assert isinstance(inner_residual, lk.Trace) and inner_residual[0].layer is branch[2].f[0]


def test_interleaved_passes_each_use_their_own_trace():
    net = lk.Net([lin(3, 4, 0), Residual([lk.Dropout(0.5, rng=3), lin(4, 4, 1)]), lin(4, 1, 2)])
    xa, xb = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))
    ya, ta = net.forward(xa)
    yb, tb = net.forward(xb)
    dy = np.ones((5, 1))
    net.backward(tb, dy)
    grads_b = getattr(net, "1.f.1.dW").copy()
    net.backward(ta, dy)
    grads_a = getattr(net, "1.f.1.dW").copy()
    # once more in order: the same gradients
    net.backward(tb, dy)
    np.testing.assert_array_equal(getattr(net, "1.f.1.dW"), grads_b)
    net.backward(ta, dy)
    np.testing.assert_array_equal(getattr(net, "1.f.1.dW"), grads_a)
    assert not np.array_equal(grads_a, grads_b)


def test_walk_yields_every_layer_with_its_path():
    net = branch_net()
    paths = dict(net.walk())
    assert list(paths) == ["0", "0.branches.0", "0.branches.0.0", "0.branches.1", "0.branches.1.0",
                           "0.branches.1.1", "0.branches.1.2", "0.branches.1.2.f", "0.branches.1.2.f.0",
                           "0.branches.1.2.f.1", "1"]
    assert paths["0.branches.1.2.f.0"] is net[0].branches[1][2].f[0]
    assert len(net.layers) == 2  # Net.layers stays the top level


def test_parameter_paths_read_and_write_nested_arrays():
    net = branch_net()
    assert net.param_names == ("0.branches.0.0.W", "0.branches.0.0.b", "0.branches.1.0.W", "0.branches.1.0.b",
                               "0.branches.1.2.f.0.W", "0.branches.1.2.f.0.b", "1.W", "1.b")
    assert getattr(net, "0.branches.1.0.W") is net[0].branches[1][0].W
    setattr(net, "0.branches.0.0.b", np.full(2, 3.0))
    np.testing.assert_array_equal(net[0].branches[0][0].b, 3.0)
    assert net.n_params == sum(np.size(getattr(net, name)) for name in net.param_names)
    assert net[0].param_names[0] == "branches.0.0.W"
    with pytest.raises(AttributeError, match="no layer at"):
        getattr(net, "0.branches.7.0.W")


# ---------------------------------------------------------------------- bad nesting
def test_residual_that_changes_the_width_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"Residual.*maps 4 features to 3"):
        Residual([lin(4, 3, 0)])


class Narrow(lk.Layer):
    """Drops the last column: a width change no declaration announces."""

    def output_features(self, n_in):
        return None

    def forward(self, x):
        return np.asarray(x)[:, :-1]

    def backward(self, x, dy):
        return np.hstack([dy, np.zeros((len(dy), 1))])


class DropRow(lk.Layer):
    def forward(self, x):
        return np.asarray(x)[1:]

    def backward(self, x, dy):
        return np.vstack([np.zeros((1, dy.shape[1])), dy])


def test_residual_width_change_found_at_the_first_forward():
    block = Residual([Narrow()])
    with pytest.raises(ValueError, match=r"Residual\(\[Narrow\(\)\]\): f maps an input of shape \(3, 4\)"):
        lk.Net([block]).forward(np.ones((3, 4)))


def test_branches_with_different_rows_or_widths_are_refused():
    with pytest.raises(ValueError, match=r"Concatenate.*output 3 \(branch 0\), 2 \(branch 1\) rows"):
        Concatenate([[lk.Identity()], [DropRow()]]).forward(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"Add.*one width, got 2 \(branch 0\), 3 \(branch 1\)"):
        Add([[lin(4, 2, 0)], [lin(4, 3, 1)]])
    with pytest.raises(ValueError, match=r"Add.*one shape"):
        Add([[lk.Identity()], [Narrow()]]).forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"Concatenate.*take 4 \(branch 0\), 3 \(branch 1\) input features"):
        Concatenate([[lin(4, 2, 0)], [lin(3, 2, 1)]])


def test_bad_block_arguments_name_the_block():
    with pytest.raises(ValueError, match="Residual: expected at least one layer"):
        Residual([])
    with pytest.raises(ValueError, match="Concatenate: expected at least one branch"):
        Concatenate([])
    with pytest.raises(TypeError, match="Add: branches must be a list of branches"):
        Add(lin(2, 2, 0))
    with pytest.raises(TypeError, match="Residual: expected a list of layers"):
        Residual(lk.ReLU())
    with pytest.raises(TypeError, match="Net: item 1 must be a layer"):
        Residual([lk.ReLU(), 3])


# ---------------------------------------------------------------------- fusion
def test_runs_of_built_in_layers_inside_blocks_are_fused():
    net = residual_net()
    net.forward(np.ones((2, 3)))
    assert net[1].f._compiled() is not None  # one fused chain for f
    concat = branch_net()[0]
    concat.forward(np.ones((2, 3)))
    assert concat.branches[0]._compiled() is not None
    assert type(concat.branches[1]._runner()).__name__ == "SegmentedPlan"


def test_fused_and_layer_by_layer_paths_agree_bit_for_bit():
    class Wrapped(lk.Layer):
        """A Python layer around a built-in one: the plan cannot fuse it."""

        def __init__(self, layer):
            self.layer = layer
            self.param_names = tuple(layer.param_names)

        def __getattr__(self, name):
            if name.startswith("__") or name == "layer":
                raise AttributeError(name)
            return getattr(self.layer, name)

        def __setattr__(self, name, value):
            if name in ("layer", "param_names"):
                object.__setattr__(self, name, value)
            else:
                setattr(self.layer, name, value)

        def forward(self, x):
            return self.layer.forward(x)

        def backward(self, x, dy):
            return self.layer.backward(x, dy)

    fused = residual_net()
    slow = copy.deepcopy(fused)
    slow[1].f.layers = [Wrapped(layer) for layer in slow[1].f.layers]
    x = RNG.standard_normal((6, 3))
    y1, t1 = fused.forward(x)
    y2, t2 = slow.forward(x)
    np.testing.assert_array_equal(y1, y2)
    dy = RNG.standard_normal(y1.shape)
    np.testing.assert_array_equal(fused.backward(t1, dy, input_grad=True), slow.backward(t2, dy, input_grad=True))
    np.testing.assert_array_equal(fused[1].f[2].dW, slow[1].f[2].layer.dW)


# ---------------------------------------------------------------------- training
def test_step_with_a_rate_updates_nested_parameters():
    net = branch_net()
    x = RNG.standard_normal((5, 3))
    y, trace = net.forward(x)
    net.backward(trace, np.ones_like(y))
    before = {name: getattr(net, name).copy() for name in net.param_names}
    grads = {name: getattr(net, "d" + name).copy() for name in net.param_names}
    net.step(0.1)
    for name in net.param_names:
        np.testing.assert_allclose(getattr(net, name), before[name] - 0.1 * grads[name], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("make_optimizer", [lambda: Adam(0.01), lambda: SGD(0.1, momentum=0.9)])
def test_optimizer_state_keys_are_parameter_paths(make_optimizer, tmp_path):
    net = branch_net()
    optimizer = make_optimizer()
    x, target = RNG.standard_normal((8, 3)), RNG.standard_normal((8, 1))
    for _ in range(3):
        y, trace = net.forward(x)
        net.backward(trace, y - target)
        net.step(optimizer)
    assert set(optimizer.state) == set(net.param_names)
    path = tmp_path / "net.npz"
    net.save(path, optimizer=optimizer)
    restored_optimizer = make_optimizer()
    restored = lk.Net.load(path, optimizer=restored_optimizer)
    for key, state in optimizer.state.items():
        for slot, value in state.items():
            np.testing.assert_array_equal(restored_optimizer.state[key][slot], value)
    # one more step from the restored pair equals one more step from the originals
    for model, opt in ((net, optimizer), (restored, restored_optimizer)):
        y, trace = model.forward(x)
        model.backward(trace, y - target)
        model.step(opt)
    for name in net.param_names:
        np.testing.assert_array_equal(getattr(restored, name), getattr(net, name))


def test_clipping_and_the_global_norm_reach_nested_gradients():
    net = residual_net()
    y, trace = net.forward(RNG.standard_normal((5, 3)))
    net.backward(trace, 100 * np.ones_like(y))
    grads = [getattr(net, "d" + name) for name in net.param_names]
    norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert global_grad_norm(net) == pytest.approx(norm)
    clip_grad_norm(net, 1.0)
    assert global_grad_norm(net) == pytest.approx(1.0, rel=1e-5)
    assert np.linalg.norm(getattr(net, "d1.f.0.W")) < np.linalg.norm(grads[2]) + 1e-12


def test_train_and_eval_reach_nested_layers():
    dropout = lk.Dropout(0.5, rng=0)
    net = lk.Net([lin(3, 4, 0), Concatenate([[Residual([dropout, lin(4, 4, 1)])], [lin(4, 2, 2)]])])
    net.eval()
    assert dropout.training is False and net[1].training is False
    x = RNG.standard_normal((5, 3))
    np.testing.assert_array_equal(net.forward(x)[0], net.predict(x))
    net.train()
    assert dropout.training is True
    assert not np.array_equal(net.forward(x)[0], net.predict(x))


def test_fit_trains_a_residual_net_with_diagnostics():
    x = RNG.standard_normal((60, 3))
    y = (x[:, :1] * x[:, 1:2] > 0).astype(float)
    net = lk.Net([lin(3, 8, 0), Residual([lin(8, 8, 1), lk.ReLU(), lin(8, 8, 2)]), lk.ReLU(), lin(8, 1, 3),
                  lk.Sigmoid()])
    before = getattr(net, "1.f.0.W").copy()
    history = lk.fit(net, x, y, epochs=3, lr=Adam(0.01), batch_size=10, seed=0, diagnostics=True,
                     clip_norm=5.0, verbose=0)
    assert not np.array_equal(getattr(net, "1.f.0.W"), before)
    assert "grad_norm/1.f.0.W" in history.diagnostics.records
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_copies_and_pickles_of_nets_with_blocks_predict_the_same():
    net = branch_net()
    x = RNG.standard_normal((4, 3))
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(twin.predict(x), net.predict(x))


def test_no_untrained_parameter_warning_for_blocks():
    net = residual_net()
    y, trace = net.forward(np.ones((2, 3)))
    net.backward(trace, np.ones_like(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.step(0.1)
        net.step(Adam(0.1))


@pytest.mark.parametrize("make", [
    lambda: Residual([lin(3, 3, 0), lk.Tanh(), lin(3, 3, 1)]),
    lambda: Concatenate([[lin(3, 2, 0)], [lin(3, 2, 1), lk.Tanh()]]),
    lambda: Add([[lin(3, 2, 0)], [lin(3, 2, 1), lk.Tanh()]]),
    lambda: lk.Net([lin(3, 2, 0), lk.Tanh()]),
])
def test_a_first_block_skips_the_input_gradient_when_not_asked(make):
    net = lk.Net([make(), lk.Tanh()])
    x = RNG.standard_normal((5, 3))
    y, trace = net.forward(x)
    dy = RNG.standard_normal(y.shape)
    assert net.backward(trace, dy, input_grad=True) is not None
    expected = {name: getattr(net, "d" + name).copy() for name in net.param_names}
    for name in net.param_names:
        setattr(net, "d" + name, None)
    assert net.backward(trace, dy, input_grad=False) is None
    for name in net.param_names:
        np.testing.assert_array_equal(getattr(net, "d" + name), expected[name])


def test_a_layer_with_parameters_used_twice_is_refused():
    shared = lin(3, 3, 0)
    with pytest.raises(ValueError, match=r"Net: the layer Linear\(3, 3\) is used twice, at 0 and 1.f.0"):
        lk.Net([shared, Residual([shared])])
    branch = lk.Net([lin(3, 2, 1)])
    with pytest.raises(ValueError, match=r"Concatenate: the layer Linear\(3, 2\) is used twice, at "
                                         r"branches.0.0 and branches.1.0"):
        Concatenate([branch, branch])
    relu = lk.ReLU()
    assert len(lk.Net([lin(3, 3, 2), relu, lin(3, 3, 3), relu]).layers) == 4  # no parameters: no harm


def test_a_workspace_pass_of_a_net_with_blocks_equals_a_plain_pass():
    net = lk.Net([lin(3, 5, 0), lk.ReLU(), residual_net()[1], lin(5, 2, 4)])
    ws = net.workspace()
    x = RNG.standard_normal((6, 3))
    y, trace = net.forward(x)
    dy = RNG.standard_normal(y.shape)
    dx = net.backward(trace, dy, input_grad=True)
    grads = {name: getattr(net, "d" + name).copy() for name in net.param_names}
    for _ in range(2):
        y_ws, trace_ws = net.forward(x, workspace=ws)
        np.testing.assert_array_equal(y_ws, y)
        np.testing.assert_array_equal(net.backward(trace_ws, dy, input_grad=True), dx)
        for name in net.param_names:
            np.testing.assert_array_equal(getattr(net, "d" + name), grads[name])


def test_trace_walk_gives_every_inner_input_under_its_layers_path():
    inner_net = lk.Net([lin(4, 4, 5), lk.Tanh()])
    net = lk.Net([lin(3, 4, 0), Residual([lin(4, 4, 1), lk.ReLU()]),
                  Concatenate([[lin(4, 2, 2)], [inner_net]]), lin(6, 1, 3)])
    x = RNG.standard_normal((5, 3))
    _, trace = net.forward(x)
    entries = dict(trace.walk())
    layers = dict(net.walk())
    # every layer has an entry, but for a block's own inner nets (f, branches.<b>), whose layers have theirs
    assert set(entries) == {path for path in layers if not re.search(r"(\.f|\.branches\.\d+)$", path)}
    assert isinstance(entries["2.branches.1.0"].layer, lk.Net)  # a net used as a layer is a layer
    assert all(entries[path].layer is layers[path] for path in entries)
    h = x @ net[0].W + net[0].b
    np.testing.assert_array_equal(entries["1.f.0"].x, h)
    z = h @ net[1].f[0].W + net[1].f[0].b
    np.testing.assert_allclose(entries["1.f.1"].x, z, rtol=1e-14)
    np.testing.assert_allclose(entries["2.branches.1.0.1"].x, (h + np.maximum(z, 0)) @ inner_net[0].W + inner_net[0].b,
                               rtol=1e-13)


def test_a_net_takes_the_dtype_its_first_declaring_layer_declares_even_inside_a_block():
    concat = lk.Concatenate([[lk.ReLU()], [lk.Linear(2, 3, rng=0, dtype="float32")]])
    assert concat.declared_dtype() == np.float32 and concat.dtype == np.float32
    assert lk.Net([concat, lk.Linear(5, 1, rng=1)]).dtype == np.float32
    # a block of parameterless layers declares nothing: the next layer decides, as at the top level
    assert lk.Residual([lk.Tanh()]).declared_dtype() is None and lk.Residual([lk.Tanh()]).dtype == np.float64
    assert lk.Net([lk.Residual([lk.Tanh()]), lk.Linear(2, 1, rng=0, dtype="float32")]).dtype == np.float32
    assert lk.Net([lk.ReLU()]).dtype == np.float64 and lk.Net([lk.ReLU()]).declared_dtype() is None


@pytest.mark.parametrize("make", [lk.Concatenate, lk.Add])
def test_a_branching_block_refuses_a_ctx_that_is_not_its_passes(make):
    block = make([[lk.Linear(3, 2, rng=0)], [lk.Linear(3, 2, rng=1)]])
    x = np.ones((4, 3))
    y, ctx = block.forward_pass(x, True)
    for wrong in (None, ctx.traces[0], ctx._replace(traces=ctx.traces[:1])):
        with pytest.raises(ValueError, match=rf"{make.__name__}\(.*ctx must be the BranchTraces"):
            block.backward_pass(x, wrong, np.ones_like(y))
        with pytest.raises(ValueError, match=rf"{make.__name__}\(.*ctx must be the BranchTraces"):
            block.backward_params(x, wrong, np.ones_like(y))


@pytest.mark.parametrize("build", [lambda rng: lk.Net(["relu"], rng=rng), lambda rng: lk.Residual(["relu"], rng=rng),
                                   lambda rng: lk.Concatenate([["relu"]], rng=rng)])
def test_a_bad_rng_for_spec_items_is_refused_naming_the_argument(build):
    with pytest.raises(TypeError, match=r"(Net|Residual|Concatenate): rng: expected None, an int seed or a "
                                        r"numpy.random.Generator, got str"):
        build("seven")
