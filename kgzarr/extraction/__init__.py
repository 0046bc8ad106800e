"""The extraction engine: Dask tasks over store chunks, pooling, transforms, statistics and outputs.

The package is named ``extraction`` so that ``kgzarr.extract``, the function
exported by ``kgzarr/__init__.py``, is never shadowed by a subpackage.
"""
