"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, ...) and learning-rate schedules, updating parameters in place.

    >>> opt = gt.optim.AdamW(gt.optim.decay_groups(model.parameters(), 0.1), lr=3e-4)
    >>> sched = gt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    >>> loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""

from gt.optim import lr_scheduler
from gt.optim.adadelta import Adadelta
from gt.optim.adafactor import Adafactor
from gt.optim.muon import Muon
from gt.optim.adagrad import Adagrad
from gt.optim.adam import Adam, AdamW
from gt.optim.adamax import Adamax
from gt.optim.asgd import ASGD
from gt.optim.lbfgs import LBFGS
from gt.optim.nadam import NAdam
from gt.optim.optimizer import Optimizer, decay_groups
from gt.optim.radam import RAdam
from gt.optim.rmsprop import RMSprop
from gt.optim.rprop import Rprop
from gt.optim.sgd import SGD
from gt.optim.sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "decay_groups",
           "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD", "Adafactor", "LBFGS", "Muon", "SparseAdam"]
