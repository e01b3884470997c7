"""torch's ``torch.nn.modules.module``: ``Module`` and the hooks common to all modules
(gt/nn/global_hooks.py).

    >>> from gt.nn.modules.module import register_module_forward_pre_hook
"""

from gt.nn.global_hooks import (register_module_backward_hook, register_module_buffer_registration_hook,  # noqa: F401
                                register_module_forward_hook, register_module_forward_pre_hook,
                                register_module_full_backward_hook, register_module_full_backward_pre_hook,
                                register_module_module_registration_hook,
                                register_module_parameter_registration_hook)
from gt.nn.module import Module  # noqa: F401
from gt.nn.state import IncompatibleKeys as _IncompatibleKeys  # noqa: F401  (torch's private name)
