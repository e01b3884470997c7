"""torch.ao.nn.quantized's ``FloatFunctional`` (float ``add``/``mul``/``cat``/``add_relu`` whose
outputs a calibration observes) and ``QFunctional``, what ``convert`` makes of it: the same
methods on quint8 tensors with the observed output ``scale``/``zero_point``, torch's kernels'
integers to the bit (gt/ao/nn/quantized/static_kernels.py)."""

import numpy as np

from gt.ao.nn.quantized import static_kernels
from gt.nn import functional as F
from gt.nn.linear import Identity
from gt.nn.module import Module
from gt.tensor import functions


class FloatFunctional(Module):
    """Float ops whose results pass through ``activation_post_process`` (an observer after
    ``prepare``; ``Identity`` before): call ``add``, ``mul``, ``cat``, ``add_relu`` (observed) or
    ``add_scalar``/``mul_scalar`` (not), never ``forward``."""

    def __init__(self):
        super().__init__()
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use the underlying operation")

    def add(self, x, y):
        return self.activation_post_process(x + y)

    def add_scalar(self, x, y):
        return x + y

    def mul(self, x, y):
        return self.activation_post_process(x * y)

    def mul_scalar(self, x, y):
        return x * y

    def cat(self, x, dim=0):
        return self.activation_post_process(functions.cat(list(x), dim=dim))

    def add_relu(self, x, y):
        return self.activation_post_process(F.relu(x + y))


class QFunctional(Module):
    """``FloatFunctional``'s ops on quint8 tensors quantized per tensor, each output quantized with
    ``scale``/``zero_point`` (``add``, ``mul``, ``cat``, ``add_relu``; torch's state dict keys)."""

    def __init__(self):
        super().__init__()
        self.scale, self.zero_point = 1.0, 0
        self.activation_post_process = Identity()

    def forward(self, x):
        raise RuntimeError("Functional is not intended to use the 'forward'. Please use the underlying operation")

    def add(self, x, y):
        return self.activation_post_process(static_kernels.add(x, y, self.scale, self.zero_point))

    def add_relu(self, x, y):
        return self.activation_post_process(static_kernels.add(x, y, self.scale, self.zero_point, relu=True))

    def mul(self, x, y):
        return self.activation_post_process(static_kernels.mul(x, y, self.scale, self.zero_point))

    def cat(self, x, dim=0):
        return self.activation_post_process(static_kernels.cat(list(x), self.scale, self.zero_point, dim))

    def add_scalar(self, x, y):
        raise NotImplementedError("QFunctional.add_scalar: gt has no quantized::add_scalar")

    def mul_scalar(self, x, y):
        raise NotImplementedError("QFunctional.mul_scalar: gt has no quantized::mul_scalar")

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        new = cls()
        new.scale, new.zero_point = float(scale), int(zero_point)
        return new

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "scale"] = np.array(self.scale, np.float32)
        destination[prefix + "zero_point"] = np.array(self.zero_point, np.int64)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        own = {prefix + "scale": float, prefix + "zero_point": int}
        for key, kind in own.items():
            if key in state_dict:
                value = state_dict[key]
                setattr(self, key[len(prefix):], kind(value.item() if hasattr(value, "item") else value))
            else:
                missing_keys.append(key)
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k not in own}, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}"
