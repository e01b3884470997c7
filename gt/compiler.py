"""``gt.compile`` and ``gt.compiler``: torch.compile's names, without a compiler.

gt runs every op eagerly, so ``gt.compile(model)`` does no compilation: it returns the same
function or module (the very object), after checking its arguments as torch does. Code written
for torch, ``model = torch.compile(model)`` or ``@torch.compile(mode="max-autotune")``, runs
unchanged and gives the eager answers. ``gt.compiler.is_compiling()`` is always False.
"""

__all__ = ["compile", "is_compiling", "is_dynamo_compiling"]

_MODES = (None, "default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def is_compiling():
    """False: gt never traces a function (torch.compiler.is_compiling)."""
    return False


def is_dynamo_compiling():
    return False


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None, name=None,
            disable=False, recompile_limit=None, isolate_recompiles=False, shapes_spec=None):
    """No compilation: the same function or module back (``model``), or, with ``model=None``, a
    decorator that returns what it decorates.

    The arguments are checked as ``torch.compile`` checks them: ``mode`` one of None, 'default',
    'lite', 'reduce-overhead', 'max-autotune-no-cudagraphs', 'max-autotune' (RuntimeError
    otherwise), not both ``mode`` and ``options`` (RuntimeError), ``options`` a dict (TypeError;
    torch fails with AttributeError), ``model`` callable (AssertionError). ``backend`` is taken as
    given: gt has no backends to choose from."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: "
                           + ", ".join(m for m in _MODES if m is not None))
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"gt.compile: options must be a dict or None, got {type(options).__name__}")
    if model is None:
        def fn(model):
            if model is None:
                raise RuntimeError("Model can't be None")
            return compile(model, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                           options=options, name=name, disable=disable, recompile_limit=recompile_limit,
                           isolate_recompiles=isolate_recompiles, shapes_spec=shapes_spec)
        return fn
    if not callable(model):
        raise AssertionError(f"A callable function is expected, but {type(model)} is provided.")
    return model
