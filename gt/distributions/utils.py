"""torch.distributions.utils' functions under their torch names."""

from gt.distributions.distribution import (broadcast_all, clamp_probs, lazy_property, logits_to_probs,
                                           probs_to_logits)

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits"]
