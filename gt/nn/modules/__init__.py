"""torch's import path ``torch.nn.modules``: ``gt.nn.modules.module`` holds ``Module`` and the
module-level hooks (``register_module_forward_hook``, ...), as torch's."""

from gt.nn.modules import module  # noqa: F401
from gt.nn.modules.module import Module  # noqa: F401
