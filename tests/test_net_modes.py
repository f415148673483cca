"""Train and eval modes and the per-pass protocol of ``Net``: forward_pass, backward_pass, TraceEntry.ctx."""
import copy
import pickle

import numpy as np
import pytest

import layerkit as lk
from layerkit.net import TraceEntry


class Recorder(lk.Layer):
    """The identity, recording the mode of every pass and checking that each backward gets its pass's ctx."""

    def __init__(self):
        self.modes = []
        self.count = 0

    def forward_pass(self, x, training):
        self.modes.append(training)
        self.count += 1
        return np.asarray(x, dtype=float), ("pass", self.count)

    def backward_pass(self, x, ctx, dy):
        self.seen = ctx
        return dy

    def forward(self, x):
        return self.forward_pass(x, self.training)[0]

    def backward(self, x, dy):
        return dy


class Plain:
    """A duck-typed layer without the protocol: forward and backward only."""

    def forward(self, x):
        return 2 * x

    def backward(self, x, dy):
        return 2 * dy


def test_layers_start_in_training_mode_and_train_eval_set_every_layer():
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.Dropout(0.5), lk.BatchNorm1d(4), lk.ReLU()])
    assert lk.Layer.training is True and all(layer.training for layer in net)
    assert net.eval() is net and not any(layer.training for layer in net)
    assert net.train() is net and all(layer.training for layer in net)
    assert net.train(False) is net and not any(layer.training for layer in net)
    assert lk.Linear.training is True  # instances, not classes, were changed
    with pytest.raises(TypeError, match=r"Net.train: mode must be True or False, got str 'yes'"):
        net.train("yes")


def test_forward_runs_each_layer_in_its_mode_and_keeps_ctx_in_the_trace(rng):
    recorder = Recorder()
    net = lk.Net([lk.Linear(3, 4, rng=0), recorder, Plain(), lk.Linear(4, 2, rng=1)])
    x = rng.normal(size=(5, 3))
    _, first = net.forward(x)
    net.eval()
    _, second = net.forward(x)
    assert recorder.modes == [True, False]
    assert first[1].ctx == ("pass", 1) and second[1].ctx == ("pass", 2)
    assert first[0].ctx is None and first[2].ctx is None
    net.backward(first, np.ones((5, 2)))
    assert recorder.seen == ("pass", 1)  # each backward pass gets its own forward pass's ctx
    net.backward(second, np.ones((5, 2)))
    assert recorder.seen == ("pass", 2)
    layer, inputs = first[1]  # entries still unpack as (layer, x)
    assert layer is recorder and inputs.shape == (5, 4)


def test_predict_runs_in_inference_mode_and_leaves_the_mode_unchanged(rng):
    recorder = Recorder()
    bn = lk.BatchNorm1d(4)
    net = lk.Net([lk.Linear(3, 4, rng=0), bn, recorder, lk.Dropout(0.5, rng=0), lk.Linear(4, 2, rng=1)])
    x = rng.normal(size=(6, 3))
    first = net.predict(x)
    assert recorder.modes == [False] and all(layer.training for layer in net)
    assert np.array_equal(bn.running_mean, np.zeros(4))  # no statistics were updated
    assert np.array_equal(net.predict(x), first)  # no dropout: deterministic
    net.eval()
    y, _ = net.forward(x)
    assert np.array_equal(y, first)  # the same as a forward pass in eval mode
    assert not any(layer.training for layer in net)
    net.predict(x)
    assert not any(layer.training for layer in net)
    net.train()
    y, _ = net.forward(x)
    assert not np.array_equal(y, first)  # training mode: batch statistics and dropout


def test_fit_trains_in_training_mode_and_validates_in_inference_mode(rng):
    recorder = Recorder()
    net = lk.Net([lk.Linear(3, 8, rng=0), recorder, lk.Dropout(0.5, rng=1), lk.Linear(8, 1, rng=2)]).eval()
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    x_val, y_val = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    history = lk.fit(net, x, y, epochs=3, batch_size=5, loss="mse", verbose=0, seed=0,
                     validation_data=(x_val, y_val))
    # per epoch: 4 training batches in training mode, then one validation pass in inference mode
    assert recorder.modes == ([True] * 4 + [False]) * 3
    val_loss, _ = lk.mean_squared_error(net.predict(x_val), y_val)
    assert history["val_loss"][-1] == val_loss  # no dropout in the validation loss
    assert not any(layer.training for layer in net)  # issue 21: back in the eval mode fit found


def test_fit_puts_every_layer_back_in_the_mode_it_found_even_on_an_error(rng):
    net = lk.Net([lk.Linear(3, 8, rng=0), lk.Dropout(0.5, rng=1), lk.BatchNorm1d(8), lk.Linear(8, 1, rng=2)])
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    lk.fit(net, x, y, epochs=1, batch_size=5, loss="mse", verbose=0)
    assert all(layer.training for layer in net)
    assert not any("training" in vars(layer) for layer in net)  # the class default again, no attribute left
    net.eval()
    net[1].training = True  # mixed modes come back as they were
    lk.fit(net, x, y, epochs=1, batch_size=5, loss="mse", verbose=0)
    assert [layer.training for layer in net] == [False, True, False, False]

    class Boom(lk.callbacks.Callback):
        def on_batch_end(self, state):
            assert all(layer.training for layer in state.net)  # trained in training mode
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lk.fit(net, x, y, epochs=1, batch_size=5, loss="mse", verbose=0, callbacks=[Boom()])
    assert [layer.training for layer in net] == [False, True, False, False]


def test_fit_puts_nested_layers_back_in_the_mode_they_had(rng):
    inner = lk.Net([lk.Linear(4, 4, rng=3), lk.Dropout(0.5, rng=4)])
    block = lk.Residual([lk.Linear(4, 4, rng=1), lk.BatchNorm1d(4)])
    net = lk.Net([lk.Linear(3, 4, rng=0), block, inner, lk.Linear(4, 1, rng=2)])
    net.eval()
    inner[1].training = True  # a nested layer in its own mode
    before = [(path, layer.training) for path, layer in net.walk()]
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    lk.fit(net, x, y, epochs=1, batch_size=5, loss="mse", verbose=0)
    assert [(path, layer.training) for path, layer in net.walk()] == before
    assert not block.training and not block.f[1].training and inner[1].training


def test_backward_without_input_gradient_through_the_protocol(rng):
    net = lk.Net([lk.Dropout(0.5, rng=0), lk.Linear(3, 2, rng=1), lk.BatchNorm1d(2)])
    _, trace = net.forward(rng.normal(size=(4, 3)))
    assert net.backward(trace, np.ones((4, 2)), input_grad=False) is None
    assert net[1].dW.shape == (3, 2)


def test_trace_entries_pickle_copy_and_compare_with_their_ctx(rng):
    x = rng.normal(size=(2, 3))
    mask = np.array([[0.0, 2.0, 2.0], [2.0, 0.0, 2.0]])
    layer = lk.Dropout(0.5)
    entry = TraceEntry(layer, x, mask)
    assert entry.ctx is mask and TraceEntry(layer, x).ctx is None
    assert TraceEntry._make((layer, x)).ctx is None  # entries of the fused plan
    again = pickle.loads(pickle.dumps(entry))
    assert isinstance(again, TraceEntry) and np.array_equal(again.ctx, mask) and np.array_equal(again.x, x)
    assert copy.deepcopy(entry).ctx is not mask
    assert entry == TraceEntry(layer, x.copy(), mask.copy())
    assert entry != TraceEntry(layer, x, 2 * mask)
    assert entry != TraceEntry(layer, x)
    assert entry != TraceEntry(lk.Dropout(0.5), x, mask)
    assert "ctx=ndarray" in repr(entry)
    net = lk.Net([lk.Linear(3, 3, rng=0), lk.Dropout(0.5, rng=0), lk.Linear(3, 1, rng=1)])
    _, trace = net.forward(x)
    restored_net, restored_trace = pickle.loads(pickle.dumps((net, trace)))
    assert np.array_equal(restored_trace[1].ctx, trace[1].ctx)
    assert restored_trace[1].layer is restored_net[1]
    np.testing.assert_array_equal(restored_net.backward(restored_trace, np.ones((2, 1)), input_grad=True),
                                  net.backward(trace, np.ones((2, 1)), input_grad=True))


def test_a_net_of_builtin_fusable_layers_is_unaffected_by_the_mode(rng):
    net = lk.Net([lk.Linear(3, 4, rng=0), lk.ReLU(), lk.Linear(4, 2, rng=1), lk.Softmax()])
    x = rng.normal(size=(5, 3))
    y_train, _ = net.forward(x)
    y_eval, _ = net.eval().forward(x)
    assert np.array_equal(y_train, y_eval) and np.array_equal(net.predict(x), y_train)
