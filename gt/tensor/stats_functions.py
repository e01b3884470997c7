"""The ``gt.`` function forms of the methods in stats_methods.py and fused_methods.py
(``gt.median(x, dim)`` is ``x.median(dim)``, ``gt.addmm(input, mat1, mat2, beta=..., alpha=...)``
is ``input.addmm(mat1, mat2, ...)``), with torch's argument order."""

from gt.tensor.functions import _method

_STATS = ("median", "nanmedian", "mode", "kthvalue", "quantile", "nanquantile", "msort", "histc", "histogram",
          "logcumsumexp", "dist", "renorm", "aminmax")
_FUSED = ("addcmul", "addcdiv", "addmm", "addmv", "addr", "baddbmm", "addbmm", "heaviside")

for _name in _STATS + _FUSED:
    globals()[_name] = _method(_name)
