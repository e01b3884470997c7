"""torch.distributions.utils' functions under their torch names."""

from gt.distributions.distribution import (broadcast_all, clamp_probs, lazy_property, logits_to_probs,
                                           probs_to_logits)
from gt.distributions.transforms_matrix import tril_matrix_to_vec, vec_to_tril_matrix

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]
