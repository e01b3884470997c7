"""A custom ``autograd.Function``'s ``vmap`` staticmethod called inside ``gt.func.vmap``, as torch calls it
(gt/autograd/function_transforms.py decides when): ``vmap(info, in_dims, *args)`` returns ``(output,
out_dims)``, in place of ``forward``. gt's vmap runs its function once per batch element, so the
staticmethod is called once per element on a batch of one: each input made from the element's mapped
slices (or made inside the function) comes with a batch dimension of size one at 0 (its in_dim 0; the
others None) and ``info.batch_size`` is 1; each output's ``out_dims`` entry names where that batch
dimension is (None: not batched). Where no input is batched the staticmethod is skipped, as torch
skips it, and ``forward`` runs."""

import collections

from gt.autograd import function_transforms
from gt.tensor import Tensor

# torch's ``torch.autograd.function.VmapInfo`` (a NamedTuple)
VmapInfo = collections.namedtuple("VmapInfo", ("batch_size", "randomness"))

_LINK = "For more details, please see https://pytorch.org/docs/main/notes/extending.func.html"
_TWO = ("Expected the vmap staticmethod to have two returns, an output and out_dims with pytree structure "
        "compatible with the output. ")


def _in_dims(x, frame):
    if isinstance(x, (tuple, list)):
        return type(x)(_in_dims(a, frame) for a in x)
    batched = isinstance(x, Tensor) and (id(x) in frame.mapped or getattr(x, "_level", 0) >= frame.serial)
    return 0 if batched else None


def _leaves(tree):
    return [leaf for x in tree for leaf in _leaves(x)] if isinstance(tree, (tuple, list)) else [tree]


def _unsqueezed(x, dims):
    if isinstance(x, (tuple, list)):
        return type(x)(_unsqueezed(a, d) for a, d in zip(x, dims))
    return x if dims is None else x.unsqueeze(0)


def call_rule(cls, rule, frame, k, args, kwargs):
    """``(outputs,)`` of ``cls``'s vmap staticmethod ``rule`` for one element of the vmap whose state
    is ``frame`` (``frames[k]``), or None where none of ``args`` is batched there."""
    in_dims = tuple(_in_dims(x, frame) for x in args)
    if all(d is None for d in _leaves(in_dims)):
        return None
    unwrapped = _unsqueezed(args, in_dims)
    frames = function_transforms.frames
    outer = frames[k:]
    del frames[k:]         # the staticmethod runs below this vmap, as torch's (its own apply: the next one)
    try:
        result = rule(VmapInfo(1, frame.randomness), in_dims, *unwrapped, **kwargs)
    finally:
        frames.extend(outer)
    if not isinstance(result, tuple):
        raise RuntimeError(_TWO + f"Got a {type(result)} instead")
    if len(result) != 2:
        raise RuntimeError(_TWO + f"Got {len(result)} returns instead")
    output, out_dims = result
    dims = _broadcast(out_dims, output)
    if dims is None:
        raise RuntimeError(f"The autograd.Function's vmap staticmethod returned an incompatible (output, out_dims) "
                           f"tuple. Expected out_dims={out_dims} to be compatible with the structure of `output`. "
                           f"out_dims has structure {_spec(out_dims)} but output has structure {_spec(output)}. "
                           + _LINK)
    originals = {id(u): a for u, a in zip(_leaves(unwrapped), _leaves(args))}
    leaves = iter([_element(x, d, originals) for x, d in zip(_leaves(output), dims)])
    return (_rebuild(output, leaves),)


def _element(x, d, originals):
    """The element's output ``x`` whose batch dimension is ``d``: an input returned is the caller's."""
    if not isinstance(x, Tensor) or d is None:
        return x
    if id(x) in originals:
        return originals[id(x)]
    nd = x.dim()
    if d < -nd or d >= nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
    if x.shape[d] != 1:
        raise RuntimeError(f"vmap staticmethod: gt's vmap calls it once per batch element (info.batch_size 1); "
                           f"an output's batch dimension {d} has size {x.shape[d]}, expected 1")
    return x.select(d, 0)


def _rebuild(tree, leaves):
    if isinstance(tree, (tuple, list)):
        values = [_rebuild(x, leaves) for x in tree]
        return type(tree)(*values) if hasattr(tree, "_fields") else type(tree)(values)
    return next(leaves)


def _broadcast(dims, tree):
    """``dims`` over the leaves of ``tree`` (torch's ``_broadcast_to_and_flatten``), None where they do not match."""
    if not isinstance(dims, (tuple, list)):
        return [dims] * len(_leaves(tree))
    if type(dims) is not type(tree) or len(dims) != len(tree):
        return None
    out = []
    for d, t in zip(dims, tree):
        got = _broadcast(d, t)
        if got is None:
            return None
        out += got
    return out


def _spec(tree, indent=0):
    """torch's ``TreeSpec`` repr of ``tree``'s structure (tuples and lists)."""
    if not isinstance(tree, (tuple, list)):
        return "*"
    indent += 2
    children = [_spec(x, indent) for x in tree]
    inner = children[0] + "," + ",".join("\n" + " " * indent + c for c in children[1:]) if len(children) > 1 \
        else "".join(children)
    return f"TreeSpec({type(tree).__name__}, None, [{inner}])"

