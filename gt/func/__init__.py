"""torch's ``torch.func`` as ``gt.func``: function transforms (``grad``, ``grad_and_value``,
``vjp``, ``jvp``, ``linearize``, ``jacrev``, ``jacfwd``, ``hessian``, ``vmap``,
``functionalize``) and the module helpers ``functional_call``, ``stack_module_state`` and
``replace_all_batch_norm_modules_``, with torch's signatures, pytree arguments (tuples, lists,
dicts) and results.

How they are computed, where that differs from torch's functorch:

* The derivative transforms run gt's reverse mode (``gt.autograd.grad``) on fresh copies of the
  differentiated inputs. A transform called inside another one, or on inputs that require grad,
  records its own gradients (``create_graph=True``), so ``grad(grad(f))``, ``jacrev(grad(f))``
  and ``hessian`` differentiate again, and the results stay connected to the caller's graph.
* gt has no forward mode: ``jvp`` uses the double-vjp trick (the vjp of the vjp, two reverse
  passes), and ``jacfwd`` computes the same Jacobian as ``jacrev``, by reverse mode, in forward
  mode's dtypes (each block in its output's; an integer output's tangent is zeros, where reverse
  mode refuses it, as torch's).
* A Jacobian takes one reverse pass per output element (gt has no batched gradients). As torch's,
  ``jacrev``/``jacfwd``/``hessian`` refuse complex inputs (any argument) and outputs.
* gt has no batching rules: ``vmap`` runs ``func`` once per batch element, on slices of the
  mapped inputs, and stacks the outputs along ``out_dims``. It is correct and differentiable,
  composes with every transform (``vmap(grad(f))`` gives per-sample gradients), but costs one
  call per element. ``randomness='error'`` raises when ``func`` draws from gt's default
  generator (a draw from an explicit ``gt.Generator`` is not seen); ``'same'`` gives every
  element the same draws; ``'different'`` gives each its own. ``out_dims=None`` returns the first
  element's output and raises when the elements' outputs differ. ``chunk_size`` is checked and
  changes nothing (one element at a time already). An empty batch runs ``func`` once on zeros of
  an element's shape, for the shapes of the (empty) outputs. A change in place of an unmapped
  input (``in_dims`` None, or a keyword argument) raises: it would repeat once per element (torch
  refuses it where the value written is mapped, and makes it once otherwise); so does a change of
  shape in place (``unsqueeze_``, ``t_``, ...) of a mapped input, which the slices cannot pass on
  to the input (torch's input changes shape). Batch norm in
  training mode refuses, with torch's error, running statistics that are not mapped themselves
  (``replace_all_batch_norm_modules_``, eval mode, or stats mapped with the input run); gt cannot
  tell a mapped input from an unmapped one there, so it refuses also over an unmapped input.
* As torch's, a transform differentiates also under the caller's ``no_grad`` (its results are
  then plain values); ``jvp``, ``jacfwd`` and ``linearize`` differentiate also through the ops and
  writes the function makes under its own ``no_grad`` or ``set_grad_enabled(False)`` (torch's
  forward mode ignores grad mode; ``detach()`` and ``inference_mode`` stop it, as torch's; gt's
  own ops keep ``no_grad``'s meaning: not differentiated); ``requires_grad_()`` inside a transform's function raises torch's error
  (``linearize`` excepted: torch traces it under forward AD); ``jvp`` and ``jacfwd`` let the
  function change its inputs in place, and the caller's primals (and ``jvp``'s tangents) change
  with them, where the reverse-mode transforms raise the leaf error; ``vmap`` makes a change of a
  captured tensor once (its values are put back before each later element's run), and refuses,
  in torch's words, one writing values computed from the mapped inputs, also where every element's
  are equal (func then runs once more, on NaN slices, to tell; values that depend on the inputs'
  shape alone, ``ones_like(x)``, are not told: gt/func/vmap.py says why). Inside a
  ``forward_ad.dual_level`` the reverse transforms' results carry tangents, as torch's, and ``jvp``,
  ``jacfwd``, ``hessian`` and ``linearize`` refuse with torch's error (forward AD levels do not nest).
  In the function of ``jvp`` or ``jacfwd``, ``gt.autograd.grad`` refuses, as torch's, outputs or
  inputs made there or given to the function (torch's level records no reverse-mode graph of them).
"""

from gt.func.derivatives import grad, grad_and_value, hessian, jacfwd, jacrev, vjp
from gt.func.forward import jvp, linearize
from gt.func.modules import functional_call, functionalize, replace_all_batch_norm_modules_, stack_module_state
from gt.func.vmap import vmap

__all__ = ["functional_call", "stack_module_state", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
           "hessian", "vmap", "linearize", "functionalize", "replace_all_batch_norm_modules_"]
