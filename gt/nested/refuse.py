"""Every ``Tensor`` method a nested tensor does not support raises NotImplementedError naming the
op (torch's ``aten.cumsum.default`` for the jagged layout; its "Could not run 'aten::exp' with
arguments from the 'NestedTensorCPU' backend" for the strided one), instead of running a dense
op on storage a nested tensor does not have."""

from gt.nested.jagged_ops import tensor_other
from gt.nested.jagged_tensor import NestedBase, NestedTensor
from gt.nested.strided import StridedNestedTensor, refuse_mixed
from gt.tensor import Tensor

# Tensor's attributes both layouts keep (their own, or the autograd machinery's)
KEEP = {"shape", "dtype", "ndim", "device", "requires_grad", "is_leaf", "grad_fn", "grad", "size", "dim", "numel",
        "layout", "is_nested", "requires_grad_", "detach", "clone", "id", "is_cuda", "is_cpu", "is_floating_point",
        "is_complex", "element_size", "type", "retains_grad", "is_inference",
        "is_quantized", "is_meta", "is_sparse", "is_mkldnn", "is_mps", "is_xpu", "is_sparse_csr", "nelement",
        "get_device", "_version", "is_pinned", "is_shared", "ndimension", "backward", "placement",
        "is_xla", "is_ipu", "is_maia", "is_mtia", "is_vulkan", "itemsize"}
DUNDER_KEEP = {"__init__", "__new__", "__hash__", "__repr__", "__str__", "__init_subclass__", "__getattribute__",
               "__setattr__", "__delattr__", "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__",
               "__dir__", "__format__", "__sizeof__", "__class__", "__subclasshook__", "__slots__", "__weakref__",
               "__doc__", "__module__", "__dict__", "__annotations__", "__class_getitem__", "__copy__", "__len__",
               "__iter__", "__bool__"}


def _jagged_message(name):
    return (f"aten.{name}.default: not supported on a jagged NestedTensor in gt (elementwise ops, binary ops, "
            "sum/mean/amax/amin, softmax, linear, layer_norm, scaled_dot_product_attention, transpose, view, "
            "reshape, chunk, split, narrow, select, unflatten, flatten, permute, expand, cat, stack, max/min/argmax, "
            "any/all, where, masked_fill, in-place arithmetic, unbind, to_padded_tensor are; or work on .values())")


def _strided_message(name):
    return (f"Could not run 'aten::{name}' with arguments from the 'NestedTensorCPU' backend (a strided nested "
            "tensor in gt; layout=gt.jagged supports more ops)")


def _mixed(self, attr, args):
    """A strided and a jagged nested tensor in one op: the jagged one's op decides, as torch's
    ``__torch_function__`` hands it the op: its refusal, or its error where it asks the strided one
    for sizes (``equal``, which fails there too, asks)."""
    other = next((a for a in args if isinstance(a, NestedBase) and type(a) is not type(self)), None)
    if other is None or isinstance(self, NestedTensor) and attr != "equal":
        return
    if not isinstance(self, NestedTensor):
        getattr(other, attr)(self)
    refuse_mixed(self, args)


def _refuser(name, message, as_property, attr):
    def refuse(self, *args, **kwargs):
        _mixed(self, attr, args)
        tensor_other(name, args)        # torch parses its arguments first
        raise NotImplementedError(message(name))

    refuse.__name__ = name
    return property(refuse) if as_property else refuse


def refuse_the_rest():
    """Every other public attribute (and operator) of Tensor raises on each nested class."""
    for cls, message in ((NestedTensor, _jagged_message), (StridedNestedTensor, _strided_message)):
        own = set(vars(cls)) | set(vars(NestedBase))
        for klass in Tensor.__mro__[:-1]:
            for name, attr in vars(klass).items():
                if name in own or name in KEEP or name in DUNDER_KEEP:
                    continue
                if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                    continue
                own.add(name)
                op = name[2:-2] if name.startswith("__") else name     # torch names in-place ops with their "_"
                setattr(cls, name, _refuser(op, message, isinstance(attr, property), name))
