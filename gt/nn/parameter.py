"""``Parameter``: a leaf tensor that a ``Module`` registers as one of its weights."""

from gt import backend
from gt.backend import B
from gt.tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a module weight: a leaf with ``requires_grad=True`` by default.

    Assigning one to a ``Module`` attribute registers it, so it shows up in
    ``parameters()`` and ``state_dict()``. Built from a gt tensor it shares that
    tensor's memory (like torch); built from a numpy array or nested lists it
    holds ``B.asarray`` of them (Python floats give float32).

        >>> w = nn.Parameter(gt.zeros(3, 4))
        >>> w.requires_grad, w.is_leaf
        (True, True)
    """

    __slots__ = ()
    _is_param = True     # torch's mark of a parameter (gt.save writes one as torch's Parameter)

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            arr = B.zeros((0,), "float32")
        elif isinstance(data, Tensor):
            arr = data._data  # detached from whatever graph made it: a parameter is always a leaf
        else:
            arr = B.asarray(data)
        backend.mark_tensor_created()
        self._init(arr, requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
