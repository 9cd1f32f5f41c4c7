"""Benchmarking: resolve targets, run each in an isolated worker, build the report.

``edgekit.bench(...)`` is the Python API (:func:`edgekit.bench`). Importing a submodule of this
package (``from edgekit.bench.runner import run_bench``) binds the name ``edgekit.bench`` to this
package, so the package is callable too and does the same thing: the API works whichever
object the name holds.

Example:
    >>> import edgekit.bench.plan, edgekit
    >>> callable(edgekit.bench)
    True
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, artifacts, **kwargs):
        from edgekit.bench.runner import run_bench

        return run_bench(artifacts, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
