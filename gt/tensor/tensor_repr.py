"""``repr(tensor)`` as torch 2.13's ``torch._tensor_str._str``, with gt's spelling of dtypes
(``dtype=gt.float64``): the values (gt/backend/print_options.py), then the suffixes torch adds
(size of an empty or unsummarisable tensor, a dtype that is not a default, the device off the
CPU, ``grad_fn=<AddBackward0>`` or ``requires_grad=True``), wrapped as torch wraps them. A
sharded tensor adds gt's own ``placement=`` last."""

from gt import dtypes
from gt.backend import B, print_options

_PREFIX = "tensor("


def _node_name(node):
    """torch's class name of a graph node: ``grad_fn.name()`` (``"MmBackward0"``)."""
    name = node.name
    while callable(name):       # a node's ``name`` is gt's op name that, called, gives torch's
        name = name()
    return str(name)


def _add_suffixes(text, suffixes, indent):
    """torch's ``_add_suffixes``: each suffix after ``, `` or, past ``linewidth``, on a new line."""
    width = print_options.PRINT_OPTIONS["max_line_width"]
    parts, last = [text], len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last + len(suffix) + 2 > width:
            parts.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(parts) + ")"


def tensor_repr(t):
    """The text ``repr(t)``/``str(t)``/``print(t)`` give for gt tensor ``t``."""
    suffixes = []
    dev = t.device
    if getattr(dev, "type", "cpu") != "cpu":
        suffixes.append(f"device='{dev}'")
    dtype, shape = t.dtype, tuple(t.shape)
    if t.numel() == 0:
        if len(shape) != 1:
            suffixes.append(f"size={shape}")
        if dtype != dtypes.default_float:
            suffixes.append(f"dtype={dtype!r}")
        values = "[]"
    else:
        if not print_options.PRINT_OPTIONS["edgeitems"]:
            suffixes.append(f"size={shape}")
        default_complex = dtypes.COMPLEX_OF[dtypes.default_float.name]
        if dtype not in (dtypes.default_float, default_complex, dtypes.int64, dtypes.bool_):
            suffixes.append(f"dtype={dtype!r}")
        values = B.format(t._data)
    if t._ctx is not None:
        suffixes.append(f"grad_fn=<{_node_name(t._ctx)}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    if t._placed is not None:
        suffixes.append(f"placement={t.placement!r}")
    return _add_suffixes(_PREFIX + values, suffixes, len(_PREFIX))
