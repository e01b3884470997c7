"""``Parameter``: a leaf tensor that a ``Module`` registers as one of its weights."""

from gt import backend
from gt.autograd import inference_saved
from gt.backend import B
from gt.serialization import torch_format
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
            if requires_grad and inference_saved.made[0]:
                inference_saved.refuse_requires_grad(data)
            arr = data._data  # detached from whatever graph made it: a parameter is always a leaf
        else:
            arr = B.asarray(data)
        backend.mark_tensor_created()
        self._init(arr, requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        """torch's copies (``copy.deepcopy``, pickle) of a parameter hold a copy of the values and the
        same ``requires_grad`` (and placement), but no ``.grad``, and get an ``id`` of their own: a
        deep-copied or unpickled model starts with clean gradients."""
        reduced = super().__reduce_ex__(protocol)
        if len(reduced) > 2 and isinstance(reduced[2], tuple) and reduced[2][1]:
            attributes, slots = reduced[2]
            slots = {name: (None if name in _CLEARED else value) for name, value in slots.items() if name != "_id"}
            reduced = reduced[:2] + ((attributes, slots),) + reduced[3:]
        return reduced


_CLEARED = ("_grad_value", "_grad_factors")

torch_format.register_parameter_type(Parameter)     # gt.load gives a Parameter where torch.load does
