"""fit's data path (layerkit._batches): reused minibatch buffers, memmaps, array-likes, sparse."""
import copy
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import layerkit as lk
from layerkit._batches import BatchSource, minibatches
from layerkit.losses import get_loss
from layerkit.training import train_batch


def _net(n_in, dtype=np.float64, seed=0):
    return lk.Net([lk.Linear(n_in, 6, rng=seed, dtype=dtype), lk.ReLU(),
                   lk.Linear(6, 1, rng=seed + 1, dtype=dtype), lk.Sigmoid()])


def _data(n=97, m=5, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, m))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    return x, y


def _old_fit(net, x, y, *, epochs, batch_size, seed, lr, shuffle=True, sample_weight=None):
    """fit's previous algorithm written out: a shuffled copy of the whole set every epoch."""
    x = lk._validation.check_batch(x, "fit", dtype=net.dtype)
    loss_fn = get_loss("bce")
    y = loss_fn.prepare_targets(np.asarray(y), net.dtype)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=net.dtype)
    rng = np.random.default_rng(seed)
    workspace, grad_buffers = net.workspace(), {}
    n = x.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else None
        x_epoch, y_epoch = (x[order], y[order]) if shuffle else (x, y)
        w_epoch = sample_weight if sample_weight is None or not shuffle else sample_weight[order]
        for start in range(0, n, batch_size):
            train_batch(net, x_epoch[start:start + batch_size], y_epoch[start:start + batch_size],
                        loss_fn, lr, workspace=workspace, grad_buffers=grad_buffers,
                        sample_weight=None if w_epoch is None else w_epoch[start:start + batch_size])
    return net


def _params(net):
    return [getattr(layer, name).copy() for layer in net.layers for name in getattr(layer, "param_names", ())]


def _assert_same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb) > 0
    for u, v in zip(pa, pb):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("data_dtype", [np.float64, np.float32, ">f8"])
def test_fit_equals_the_previous_whole_copy_algorithm_bit_for_bit(dtype, shuffle, data_dtype):
    x, y = _data()
    x = x.astype(data_dtype)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    net = _net(x.shape[1], dtype)
    reference = _old_fit(copy.deepcopy(net), x, y, epochs=3, batch_size=10, seed=7, lr=0.3,
                         shuffle=shuffle, sample_weight=w)
    lk.fit(net, x, y, epochs=3, batch_size=10, seed=7, lr=0.3, shuffle=shuffle, sample_weight=w, verbose=0)
    _assert_same_params(net, reference)


def test_fortran_and_strided_data_train_like_c_contiguous():
    x, y = _data()
    wide = np.zeros((x.shape[0], 2 * x.shape[1]))
    wide[:, ::2] = x
    reference = lk.fit(_net(5), x, y, epochs=2, seed=4, verbose=0)
    for variant in (np.asfortranarray(x), wide[:, ::2]):
        net, ref_net = _net(5), _net(5)
        lk.fit(ref_net, x, y, epochs=2, seed=4, verbose=0)
        history = lk.fit(net, variant, y, epochs=2, seed=4, verbose=0)
        assert history["train_loss"] == reference["train_loss"]
        _assert_same_params(net, ref_net)


def test_memmap_trains_to_the_same_weights_as_the_array(tmp_path):
    x, y = _data(n=203, m=7)
    path = tmp_path / "x.dat"
    disk = np.memmap(path, dtype=np.float64, mode="w+", shape=x.shape)
    disk[:] = x
    disk.flush()
    disk = np.memmap(path, dtype=np.float64, mode="r", shape=x.shape)
    in_memory, from_disk = _net(7), _net(7)
    lk.fit(in_memory, x, y, epochs=2, batch_size=16, seed=2, verbose=0)
    lk.fit(from_disk, disk, y, epochs=2, batch_size=16, seed=2, verbose=0)
    _assert_same_params(in_memory, from_disk)


class RowReader:
    """An array-like read through __getitem__ only (as an HDF5 dataset): records what was read."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.reads = []

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        self.reads.append(index)
        if isinstance(index, np.ndarray):
            assert np.all(np.diff(index) > 0), "rows must be read with increasing indices"
        return self.array[index].copy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_array_like_with_getitem_trains_like_the_array_reading_sorted_rows(dtype):
    x, y = _data(n=61, m=4)
    reader = RowReader(x)
    net, ref_net = _net(4, dtype), _net(4, dtype)
    lk.fit(ref_net, x, y, epochs=2, batch_size=8, seed=5, verbose=0)
    lk.fit(net, reader, y, epochs=2, batch_size=8, seed=5, verbose=0)
    _assert_same_params(net, ref_net)
    fancy = [r for r in reader.reads if isinstance(r, np.ndarray)]
    assert len(fancy) == 2 * 8  # one sorted read per minibatch
    assert all(len(r) <= 8 for r in fancy)


def test_non_finite_values_are_found_in_chunks_of_every_kind_of_data(tmp_path):
    x, y = _data(n=300, m=3)
    x[-1, 2] = np.nan
    x[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"fit: x contains 2 NaN or infinite"):
        lk.fit(_net(3), x, y, verbose=0)
    with pytest.raises(ValueError, match=r"fit: x contains 2 NaN or infinite"):
        lk.fit(_net(3), RowReader(x), y, verbose=0)
    with pytest.raises(ValueError, match=r"fit: x contains 1 NaN or infinite"):
        lk.fit(_net(3), sp.csr_matrix(np.where(np.isinf(x), 0, x)), y, verbose=0)


def test_bad_array_likes_get_clear_errors():
    with pytest.raises(ValueError, match=r"fit: x must be 2-D or more as Linear\(2, .* takes, got shape \(4,\)"):
        lk.fit(_net(2), RowReader(np.zeros(4)), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match=r"fit: x has 4 rows but y has shape \(3,\)"):
        lk.fit(_net(2), RowReader(np.zeros((4, 2))), np.zeros(3), verbose=0)
    with pytest.raises(ValueError, match=r"fit: x must be 2-D"):
        lk.fit(_net(2), np.zeros(4), np.zeros(4), verbose=0)


class IntRowsOnly:
    """Has __len__ and __getitem__, but its __getitem__ takes single row numbers only."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if not isinstance(index, int):
            raise TypeError("row numbers only")
        return [1.0, 2.0]


@pytest.mark.parametrize("x, got", [
    ({"a": 1}, r"got dict \(a mapping"), ("abcd", r"got str"), (5, r"got int, which has neither shape nor __len__"),
    (None, r"got NoneType"), (object(), r"got object"), ({1.0, 2.0}, r"got set, which has no __getitem__"),
    ((row for row in range(4)), r"got generator"), (IntRowsOnly(), r"got IntRowsOnly, whose x\[0:4\] raised"),
])
def test_what_is_not_array_like_is_refused_saying_what_fit_takes(x, got):
    """Issue 21: a dict passed the door and failed with KeyError: 0."""
    with pytest.raises(TypeError, match=r"fit: x must be an array of shape \(n_samples, n_features\): an ndarray "
                                        r".* a numpy.memmap, a scipy.sparse matrix, or an array-like .*; " + got):
        lk.fit(_net(2), x, np.zeros(4), verbose=0)


def test_ragged_rows_are_refused_naming_x():
    """Issue 21's long property run: lists of rows of different lengths gave NumPy's inhomogeneous-shape message."""
    with pytest.raises(TypeError, match=r"fit: x must be an array of numbers, got list"):
        lk.fit(_net(2), [[1.0, 2.0], [1.0, 2.0], [1.0]], np.zeros(3), verbose=0)


def test_an_array_like_without_index_arrays_is_refused_when_rows_are_drawn():
    class SlicesOnly(RowReader):
        def __getitem__(self, index):
            if isinstance(index, np.ndarray):
                raise IndexError("no fancy indexing")
            return super().__getitem__(index)

    with pytest.raises(TypeError, match=r"fit: x must be .*; got SlicesOnly, whose x\[index_array\] raised "
                                        r"IndexError: no fancy indexing"):
        lk.fit(_net(2), SlicesOnly(np.zeros((4, 2))), np.zeros(4), verbose=0)
    # without shuffling, only slices are read: it trains
    history = lk.fit(_net(2), SlicesOnly(np.ones((4, 2))), np.ones(4), verbose=0, epochs=1, shuffle=False)
    assert np.isfinite(history["train_loss"][0])


def test_minibatches_are_gathered_into_reused_buffers():
    x, y = _data(n=40, m=3)
    source = BatchSource(x, "fit", np.float64)
    order = np.random.default_rng(0).permutation(40)
    seen = []
    for xb, yb, wb in minibatches(source, y, None, order, 16, {}):
        seen.append((xb.__array_interface__["data"][0], xb.copy(), yb.copy()))
        assert wb is None
    assert len({address for address, _, _ in seen}) == 1  # one buffer for every minibatch
    np.testing.assert_array_equal(np.concatenate([b for _, b, _ in seen]), x[order])
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in seen]), y[order])


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_minibatches_stay_sparse_csr_rows(fmt):
    dense, _ = _data(n=33, m=6)
    dense[np.abs(dense) < 0.8] = 0
    source = BatchSource(sp.random(1, 1).asformat(fmt).__class__(dense), "fit", np.float32)
    assert source.kind == "sparse" and source.shape == (33, 6)
    order = np.random.default_rng(1).permutation(33)
    y = np.arange(33)
    sizes = []
    for i, (xb, yb, wb) in enumerate(minibatches(source, y, np.ones(33), order, 10)):
        sizes.append(xb.shape[0])
        assert sp.issparse(xb) and xb.format == "csr" and xb.dtype == np.float32
        idx = order[10 * i:10 * i + 10]
        np.testing.assert_array_equal(xb.toarray(), dense[idx].astype(np.float32))
        np.testing.assert_array_equal(yb, idx)
    assert sizes == [10, 10, 10, 3]
    unshuffled = [xb.toarray() for xb, _, _ in minibatches(source, y, None, None, 10)]
    np.testing.assert_array_equal(np.concatenate(unshuffled), dense.astype(np.float32))


def _peak_of(run):
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_holds_the_data_plus_o_batch_memory_on_100_mb(dtype):
    n, m = 32_768, 400  # 105 MB of float64: the previous per-epoch copy x[order] alone took that much
    x = np.random.default_rng(0).random((n, m))
    y = (x[:, 0] > 0.5).astype(np.float64)
    assert x.nbytes >= 100e6
    net = lk.Net([lk.Linear(m, 2, rng=0, dtype=dtype), lk.ReLU(), lk.Linear(2, 1, rng=1, dtype=dtype),
                  lk.Sigmoid()])
    lk.fit(_net(3), x[:20, :3], y[:20], epochs=1, verbose=0)  # first-call imports (tqdm, ...) not counted
    peak = _peak_of(lambda: lk.fit(net, x, y, epochs=1, batch_size=256, seed=0, verbose=0))
    # the float32 net would have converted the whole set (52 MB) before; now rows convert per batch
    assert peak < 4e6, f"fit allocated {peak / 1e6:.1f} MB on top of a {x.nbytes / 1e6:.0f} MB data set"
