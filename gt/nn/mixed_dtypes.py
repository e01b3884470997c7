"""torch's refusals of norms and attention whose tensors have more than one dtype.

torch's CPU norm kernels (layer, group, batch and instance norm) take one mix only: a float16 or
bfloat16 input with float32 weights and statistics (computed in float32). Whether a call is
"mixed" is read from the first parameter given (weight, bias, running mean, running variance, in
that order): if its dtype is the input's, every other parameter must match the input too;
otherwise every parameter must be float32 and the input a half dtype. A float64 input into a
float32 ``LayerNorm`` is refused as ``Linear`` refuses it, where gt promoted. ``rms_norm`` is a
composition in torch and promotes, so it is not checked here.

``scaled_dot_product_attention`` wants query, key and value of one dtype (after autocast's
casts) and a mask that is bool, float32 or the query's dtype.

Callers test the dtypes' identity first and call in here only where they differ, so the common
norm of one dtype reads nothing more.
"""

from gt import dtypes
from gt.tensor.complex_checks import cpp_name
from gt.tensor.product_dtypes import autocast_casts


def check_norm_dtypes(dtype, *params):
    """torch's RuntimeError for a norm of an input of ``dtype`` with ``params`` (tensors or None,
    in torch's order: weight, bias, running mean, running variance) of other dtypes."""
    given = [p.dtype for p in params if p is not None]
    if not given:
        return
    if given[0] is not dtype:          # torch's mixed-dtype kernel: float32 parameters of a half input only
        if any(d is not dtypes.float32 for d in given):
            raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
        if dtype not in dtypes.HALVES:
            raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
        return
    for d in given:
        if d is not dtype:
            raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(dtype.name)} but found "
                               f"{dtypes.torch_type_name(d.name)}")


def check_attention_dtypes(q, k, v):
    """torch's RuntimeError for query, key and value of more than one dtype (float ones under an
    open autocast block are cast to its dtype first, so those pass)."""
    if autocast_casts(q, k, v):
        return
    raise RuntimeError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                       f"{cpp_name(q.dtype)} key.dtype: {cpp_name(k.dtype)} and value.dtype: {cpp_name(v.dtype)} "
                       f"instead.")


def refuse_attention_mask(mask_dtype, query_dtype):
    """torch's RuntimeError for a mask that is neither bool, float32 nor the query's dtype."""
    raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                       f"attn_mask.dtype: {cpp_name(mask_dtype)} and  query.dtype: {cpp_name(query_dtype)} instead.")
