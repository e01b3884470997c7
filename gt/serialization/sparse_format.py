"""Sparse COO tensors in torch's checkpoint format, as torch pickles them:
``torch._utils._rebuild_sparse_tensor(layout, (indices, values, size, is_coalesced))``, the layout
written as ``torch.serialization._get_layout("torch.sparse_coo")`` and the indices and values as
tensors (SGD's momentum buffer of a sparse gradient is one). gt/serialization/torch_format.py calls
these both ways; the compressed layouts are refused by name.
"""

import pickle

from gt.tensor.sparse_make import sparse_coo_tensor

COO = "torch.sparse_coo"


class LayoutName:
    """A layout as a checkpoint holds it: its name, which torch's ``_get_layout`` reads."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def reduce(obj, name):
    """The (callable, args) pickle writes for a sparse tensor or a ``LayoutName``; ``name(module, attr)``
    is the pickler's global of that name."""
    if isinstance(obj, LayoutName):
        return name("torch.serialization", "_get_layout"), (obj.name,)
    if not obj.is_sparse:
        raise TypeError(f"gt.save: gt writes sparse COO tensors only, got {obj.layout}: call .to_sparse_coo() first")
    return name("torch._utils", "_rebuild_sparse_tensor"), \
        (LayoutName(COO), (obj._sp_indices, obj._sp_values.detach(), tuple(obj.shape), obj.is_coalesced()))


def find(module, name):
    """What torch's global ``module.name`` is when reading a sparse tensor (None: not one of them)."""
    if (module, name) == ("torch._utils", "_rebuild_sparse_tensor"):
        return rebuild_sparse_tensor
    if (module, name) == ("torch.serialization", "_get_layout"):
        return str          # the name, which rebuild_sparse_tensor checks
    return None


def rebuild_sparse_tensor(layout, data):
    """The gt sparse COO tensor of torch's ``_rebuild_sparse_tensor`` call (its indices checked)."""
    if layout != COO:
        raise pickle.UnpicklingError(f"gt.load: the checkpoint holds a {layout} tensor; gt reads sparse tensors "
                                     f"of {COO} only (convert it with torch's .to_sparse_coo() before saving)")
    indices, values, size = data[:3]
    return sparse_coo_tensor(indices, values, size, is_coalesced=bool(data[3]) if len(data) > 3 else None)
