"""torch.autograd.graph's saved-tensor hooks: ``saved_tensors_hooks(pack_hook, unpack_hook)``,
``save_on_cpu`` and ``disable_saved_tensors_hooks`` (gt.autograd.graph).

While a ``saved_tensors_hooks`` block is open, each array an op saves for its backward
(``Function.save``; a custom Function's ``save_for_backward``) is handed to ``pack_hook`` as a
tensor, and what it returns is kept instead; the backward gets ``unpack_hook(packed)`` back, a
tensor of the saved one's shape and dtype, each time it reads the saved values (torch's rules:
the innermost block applies, hooks run when the op runs, not when the block closes). A saved
value the hooks handle is not checked for in-place changes (what the hook keeps is its own).

What gt's ops save differs from torch's (an op may save its output where torch's saves an
input, and some keep arrays outside ``save``, as attributes their backward reads), so the number
and the identity of the packed tensors are gt's, not torch's: hooks that keep the values (moving
them, compressing them losslessly, counting them) give the same gradients; hooks that change
them change gt's gradients in other places than torch's.
"""

import contextlib

_stack = []        # (pack_hook, unpack_hook) pairs, innermost last; a str: hooks disabled, why


def active():
    """The innermost (pack, unpack) pair, or None."""
    if not _stack or isinstance(_stack[-1], str):
        return None
    return _stack[-1]


class saved_tensors_hooks:
    """``with saved_tensors_hooks(pack_hook, unpack_hook):`` (see the module docstring)."""

    def __init__(self, pack_hook, unpack_hook):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError(f"saved_tensors_hooks: pack_hook and unpack_hook must be callables, got "
                            f"{type(pack_hook).__name__} and {type(unpack_hook).__name__}")
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        if _stack and isinstance(_stack[-1], str):
            raise RuntimeError(_stack[-1])
        _stack.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        _stack.pop()
        return False


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors kept on the CPU and moved back to their device for the backward (torch's
    activation offloading; on the CPU it changes nothing). ``pin_memory`` is refused: gt does not
    pin host memory."""

    def __init__(self, pin_memory=False, device_type="cuda"):
        if pin_memory:
            raise RuntimeError("save_on_cpu(pin_memory=True): gt does not pin host memory; leave pin_memory off")

        def pack(t):
            return t.device, t.cpu()

        def unpack(packed):
            device, t = packed
            return t.to(device)

        super().__init__(pack, unpack)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message):
    """Inside the block, opening a ``saved_tensors_hooks`` block raises RuntimeError(error_message)."""
    _stack.append(str(error_message))
    try:
        yield
    finally:
        _stack.pop()


class Packed:
    """Saved values with the arrays among them packed by ``hooks`` (as tensors made by ``wrap``)."""

    __slots__ = ("entries", "unpack_hook")

    def __init__(self, values, hooks, wrap, is_array):
        pack, self.unpack_hook = hooks
        self.entries = tuple((True, pack(wrap(v))) if is_array(v) else (False, v) for v in values)

    def unpack(self, data_of):
        """The saved values again, each packed one ``data_of(unpack_hook(packed))``."""
        return tuple(data_of(self.unpack_hook(v)) if packed else v for packed, v in self.entries)
