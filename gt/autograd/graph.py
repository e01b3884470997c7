"""torch.autograd.graph's names: the saved-tensor hooks (gt/autograd/saved_hooks.py)."""

from gt.autograd.saved_hooks import disable_saved_tensors_hooks, save_on_cpu, saved_tensors_hooks  # noqa: F401

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks"]
