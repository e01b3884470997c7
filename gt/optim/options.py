"""What torch's other optimizers share beyond gt's base class: ``maximize``, the options gt does
not implement, torch's constructor checks, and torch's float32 scalar state.

``TorchOptimizer`` is the base of RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, Rprop and ASGD:
their groups carry torch's keys (``maximize``, ``foreach``, ``differentiable``, ``capturable``,
``fused`` where torch has them), so ``state_dict()['param_groups']`` has torch's layout.
"""

# torch keeps scalar state (NAdam's mu_product, ASGD's eta and mu) in float32 0-d tensors
from gt.dtypes import round_float32 as float32  # noqa: F401  (asgd, nadam)
from gt.optim.optimizer import Optimizer, _is_number, lr_value

# torch's options gt does not implement: accepted only at their "off" values (None or False)
UNSUPPORTED = ("capturable", "differentiable")
# torch's kernel choices (multi-tensor, fused CPU/CUDA kernels): the same arithmetic, so any value is
# taken and kept in the group, as torch accepts them on the CPU
KERNEL_CHOICES = ("foreach", "fused")
# state torch keeps as 0-d float32 tensors and gt as Python floats
SCALAR_STATE = ("mu_product", "eta", "mu")


class TorchOptimizer(Optimizer):
    """An optimizer with torch's ``maximize`` and its unimplemented options refused when switched on."""

    def _check_group(self, group):
        super()._check_group(group)
        name = type(self).__name__
        refuse_unimplemented_in(name, group)
        for key in ("maximize", "centered", "decoupled_weight_decay"):
            if key in group and not isinstance(group[key], bool):
                raise TypeError(f"{name}: {key} must be True or False, got {group[key]!r}")

    def load_state_dict(self, state_dict):
        """``Optimizer.load_state_dict``, also taking torch's 0-d tensors for the scalar state."""
        try:
            state = {index: {name: _scalar(name, value) for name, value in saved.items()}
                     for index, saved in state_dict["state"].items()}
        except (KeyError, TypeError, AttributeError):
            return super().load_state_dict(state_dict)  # its error says what is wrong
        return super().load_state_dict(dict(state_dict, state=state))

    def _direction(self, grad, group):
        """The gradient to descend: ``-grad`` with ``maximize=True`` (a new tensor; ``p.grad`` stays)."""
        return -grad if group["maximize"] else grad

    def _decayed(self, p, grad, group):
        """``_direction(grad)`` with the group's weight decay: ``weight_decay * p`` added (L2), or,
        with ``decoupled_weight_decay``, ``p`` itself scaled by ``1 - lr * weight_decay`` in place."""
        grad = self._direction(grad, group)
        weight_decay = group["weight_decay"]
        if weight_decay != 0:
            if group.get("decoupled_weight_decay", False):
                p.mul_(1 - group["lr"] * weight_decay)
            else:
                grad = grad + weight_decay * p
        return grad


def refuse_unimplemented(name, **options):
    """For optimizers not built on ``TorchOptimizer`` (SGD, Adam, AdamW): torch's unimplemented
    options (``capturable``, ``differentiable``) accepted at None/False, refused otherwise, as
    ``TorchOptimizer`` does."""
    for key, value in options.items():
        if value is not None and value is not False:
            raise NotImplementedError(f"{name}: {key}={value!r} is not implemented in gt; "
                                      f"leave {key} at None or False")


def refuse_unimplemented_in(name, group):
    """``refuse_unimplemented`` of a param group's torch options (each optimizer's ``_check_group``:
    at construction, in ``add_param_group`` and after ``load_state_dict``, which resets them)."""
    refuse_unimplemented(name, **{key: group.get(key) for key in UNSUPPORTED})
    for key in KERNEL_CHOICES:
        if group.get(key) not in (None, True, False):
            raise TypeError(f"{name}: {key} must be None, True or False, got {group[key]!r}")


def _scalar(name, value):
    if name in SCALAR_STATE and hasattr(value, "item"):
        return float(value.item())
    return value


def check(condition, message):
    """torch's constructor check: ``ValueError(message)`` unless ``condition`` (nan fails too)."""
    if not condition:
        raise ValueError(message)


def check_numbers(name, **values):
    """Refuse a hyperparameter that is not a number before comparing it (a clear TypeError)."""
    for key, value in values.items():
        if not _is_number(lr_value(value) if key == "lr" else value):
            raise TypeError(f"{name}: {key} must be a number, got {value!r}")


def check_pair(name, pair):
    """``betas``, ``etas``, ``step_sizes``: a pair of numbers."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_number(v) for v in pair):
        raise TypeError(f"{name} must be a pair of numbers, got {pair!r}")


def check_betas(betas):
    if isinstance(betas, (tuple, list)):   # 1-element tensors taken as their floats, as the lr
        betas = tuple(lr_value(b, f"betas[{i}]") for i, b in enumerate(betas))
    check_pair("betas", betas)
    check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
