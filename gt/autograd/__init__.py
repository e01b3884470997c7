"""Tape-based reverse-mode autograd, one module per concern:

- ``function``: ``Function`` (one differentiable op: forward and backward side by side), grad
  mode (``no_grad``, ``enable_grad``, ``set_grad_enabled``), the hooks the tensor layer registers,
  and the debugging tape;
- ``backward``: the walk of the recorded graph that ``Tensor.backward()`` runs;
- ``gradients``: ``grad`` (torch's ``torch.autograd.grad``), the same walk returning gradients,
  and ``backward`` (torch's ``torch.autograd.backward``: several roots, ``inputs=``);
- ``buffers``: who owns a gradient array (handing buffers on without copies, recycling them);
- ``hooks``: what runs on a leaf when its gradient is complete (an optimizer in the backward);
- ``grad_hooks``: torch's tensor hooks (``Tensor.register_hook``), run by the walk;
- ``rebind``: in-place changes of tensors in the graph (which version of a tensor each op read);
- ``release``: what a backward frees of each op (its saved values; an op that saved none stays
  walkable, as torch's);
- ``forward_ad``: torch's forward-mode AD API (dual tensors; tangents per op by the double-vjp trick);
- ``custom_function``: torch's way of extending autograd (a ``Function`` subclass with static
  ``forward(ctx, ...)`` and ``backward(ctx, ...)`` on tensors).

``gt.autograd.functional`` (jacobian, hessian, ...) makes tensors, so it lives in the tensor layer
(gt/tensor/autograd_functional.py); the package face puts it at this path.

This layer sits below the tensor layer (gt/tensor) and never imports it.
"""

from gt.autograd.anomaly import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                                 set_anomaly_enabled, set_detect_anomaly)
from gt.autograd.backward import call_after_backward, topological_order
from gt.autograd.buffers import zero_grads
from gt.autograd.gradients import backward, user_grad as grad
from gt.autograd.hooks import register_fused_update, register_post_accumulate_grad_hook
from gt.autograd.custom_function import once_differentiable
from gt.autograd.function import (Function, enable_grad, fit_grad, is_grad_enabled, no_grad, ops_run,
                                  put_on_tape, set_grad_enabled, set_tensor_hooks, tape, unbroadcast)
from gt.autograd.versions import check as check_saved_versions
from gt.autograd import graph  # noqa: E402,F401  (torch.autograd.graph: saved-tensor hooks)
from gt.autograd import forward_ad  # noqa: E402,F401  (torch.autograd.forward_ad: dual tensors)
from gt.autograd import release  # noqa: E402,F401  (what a backward frees; Tensor.data = ...)
from gt.autograd import profiler  # noqa: E402,F401  (torch.autograd.profiler: profile, record_function)
from gt.autograd import grad_mode, inference  # noqa: E402,F401
from gt.autograd.grad_mode import set_multithreading_enabled  # noqa: E402

# torch.autograd.grad_mode holds inference_mode too; inference.py builds it on grad_mode's state
grad_mode.inference_mode = inference.inference_mode

__all__ = ["Function", "backward", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "set_anomaly_enabled", "call_after_backward", "check_saved_versions", "enable_grad", "fit_grad", "grad",
           "is_grad_enabled", "once_differentiable",
           "no_grad", "ops_run", "put_on_tape", "register_fused_update",
           "register_post_accumulate_grad_hook", "set_grad_enabled", "set_multithreading_enabled", "set_tensor_hooks", "tape", "topological_order",
           "unbroadcast", "zero_grads"]
