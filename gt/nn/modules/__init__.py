"""torch's import path ``torch.nn.modules``: ``gt.nn.modules.module`` holds ``Module`` and the
module-level hooks (``register_module_forward_hook``, ...), ``gt.nn.modules.lazy`` holds
``LazyModuleMixin``, as torch's."""

from gt.nn.modules import lazy, module  # noqa: F401
from gt.nn.modules.module import Module  # noqa: F401
