"""A training step in the Cython core releases the GIL, so threads can train several nets at once."""
import sys
import threading
import time

import numpy as np
import pytest

import layerkit as lk


def _gil_releases_during(call) -> int:
    """How often another Python thread ran while ``call()`` ran in this thread.

    The switch interval is made huge, so this thread never hands the GIL over
    on a timer: the spinning thread (which yields the GIL at every turn) can
    only advance while ``call`` itself releases the GIL.
    """
    count, stop = 0, False
    started = threading.Event()

    def spin():
        nonlocal count
        started.set()
        while not stop:
            count += 1
            time.sleep(0)  # releases the GIL at every turn

    old = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    thread = threading.Thread(target=spin, daemon=True)
    try:
        thread.start()
        started.wait()
        before = count
        call()
        return count - before
    finally:
        stop = True
        thread.join()
        sys.setswitchinterval(old)


@pytest.fixture(scope="module")
def big_step():
    """A net whose kernels each run for tens of milliseconds, and its compiled chain."""
    rng = np.random.default_rng(0)
    net = lk.Net([lk.Linear(1200, 1200, rng=rng), lk.ReLU(), lk.Linear(1200, 1200, rng=rng), lk.Sigmoid()])
    x = rng.normal(size=(300, 1200))
    chain = net._compiled().chain
    return net, chain, x


def test_the_method_sees_a_call_that_holds_the_gil():
    data = list(range(3_000_000, 0, -1))
    assert _gil_releases_during(lambda: sorted(data)) == 0


def test_forward_and_backward_kernels_release_the_gil(big_step):
    net, chain, x = big_step
    out = {}

    def forward():
        out["y"], out["saved"] = chain.forward(x, None)

    assert _gil_releases_during(forward) > 0
    dy = np.ones_like(out["y"]) / out["y"].size
    assert _gil_releases_during(lambda: chain.backward(out["saved"], dy, None, True)) > 0
    # the kernels are those of the net's own passes: same results
    y, trace = net.forward(x)
    np.testing.assert_array_equal(out["y"], y)


def test_threads_train_nets_at_once_with_the_results_of_one_thread():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(256, 32)), rng.integers(0, 4, size=256)

    def make(seed):
        return lk.Net.from_config([{"type": "linear", "n_in": 32, "n_out": 64}, "relu",
                                   {"type": "linear", "n_in": 64, "n_out": 4}], seed=seed)

    def train(net, seed):
        lk.fit(net, x, y, epochs=3, lr=0.05, batch_size=16, loss="softmax_cross_entropy", seed=seed, verbose=False)

    alone = [make(seed) for seed in range(4)]
    for seed, net in enumerate(alone):
        train(net, seed)
    together = [make(seed) for seed in range(4)]
    threads = [threading.Thread(target=train, args=(net, seed)) for seed, net in enumerate(together)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a.predict(x), b.predict(x))
