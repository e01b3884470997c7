"""Two-operand functions where either operand is a nested tensor (gt.nested): the nested tensor's
own op runs (``nested._reflected(fn, dense)`` for the dense one on the left), as torch's
``__torch_function__`` hands ``torch.atan2(x, nt)`` to the nested class. The check is one
``type(x) is not Tensor`` for plain tensors. (The methods' own paths check their operand where
they take it: ``_compare`` in arithmetic.py for ``p > nt``, ``__mod__``/``__floordiv__`` in
extra_methods.py, ``_binary`` for the arithmetic operators.)"""

import functools

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def is_nested(x):
    """Whether ``x`` is a nested tensor (a Tensor subclass that says so)."""
    return type(x) is not Tensor and isinstance(x, Tensor) and x.is_nested


def nested_pair(fn):
    """``fn(input, other, ...)`` where either is a nested tensor: the nested ``input``'s method of
    ``fn``'s name, or ``fn`` of ``input`` and the nested ``other``'s values
    (``other._reflected``), so a number on the left is ``fn``'s to take or refuse."""
    name = fn.__name__
    second = fn.__code__.co_varnames[1]     # "other", or float_power's "exponent": a keyword too

    @functools.wraps(fn)
    def call(input, *args, **kwargs):
        if not args and second in kwargs:
            args = (kwargs.pop(second),)
        if type(input) is not Tensor and is_nested(input):
            return getattr(input, name)(*args, **kwargs)
        if args and type(args[0]) is not Tensor and is_nested(args[0]):
            return args[0]._reflected(fn, input, *args[1:], **kwargs)
        return fn(input, *args, **kwargs)

    return call
