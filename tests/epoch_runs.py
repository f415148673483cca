"""``fit`` with its epochs in the compiled core (the runner's answers counted) or in the Python loop."""
import contextlib

from layerkit._epoch import EpochRunner


@contextlib.contextmanager
def epochs_in(monkeypatch, in_core: bool, calls: list | None = None):
    """Within the block, ``fit`` runs its epochs in the core (``in_core``), appending what each
    ``EpochRunner.run`` answered to ``calls``, or minibatch by minibatch in Python."""
    with monkeypatch.context() as patch:
        if not in_core:
            patch.setattr(EpochRunner, "for_fit", classmethod(lambda cls, *a, **k: None))
        elif calls is not None:
            run = EpochRunner.run

            def counted(self, order):
                result = run(self, order)
                calls.append(result)
                return result
            patch.setattr(EpochRunner, "run", counted)
        yield
