"""BLAS held to one thread, as scikit-learn's ArgKmin holds it."""
from sklearn.utils.parallel import _get_threadpool_controller


class OneBlasThread:
    """Run BLAS single-threaded, as sklearn's ArgKmin does.

    OpenBLAS splits GEMM differently with more threads, which changes the
    last bits of some products.
    """

    def __init__(self):
        ctl = _get_threadpool_controller()
        self._libs = [lc for lc in ctl.lib_controllers if lc.user_api == "blas"]
        self._saved = None

    def __enter__(self):
        saved = None
        for i, lc in enumerate(self._libs):
            n = lc.get_num_threads()
            if n != 1:
                saved = saved or {}
                saved[i] = n
                lc.set_num_threads(1)
        self._saved = saved
        return self

    def __exit__(self, *exc):
        if self._saved:
            for i, n in self._saved.items():
                self._libs[i].set_num_threads(n)
        self._saved = None
