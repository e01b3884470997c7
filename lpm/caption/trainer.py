"""Training a Pixel LLM: ``PixelLLMTrainer`` runs the steps, validates and checkpoints.

Each step: a batch of images and their captions as token ids ``[bos, w1, ..., wn, eos, pad...]``;
the model reads ``ids[:, :-1]`` and is scored on ``ids[:, 1:]`` by token cross-entropy, pad
ignored; AdamW (weight decay on matrices only), linear warmup then cosine decay to 0, gradient
clipping. Every ``val_interval`` steps (default: once per epoch) the held-out loss, next-token
accuracy and exact match of greedy captions are measured and a checkpoint is saved (``best`` by
exact match); ``checkpoint_interval`` adds checkpoints in between. A NaN or infinite loss stops
the run (the last checkpoint stays); Ctrl-C stops it at a step boundary with a checkpoint that
``--resume`` continues bit for bit. With ``blind=True`` the images are zeroed: the blind
baseline, the same decoder learning the captions alone.

    >>> trainer = PixelLLMTrainer(model, cfg, CaptionBatches(train, vocab, 32), CaptionBatches(val, vocab, 250))
    >>> state = trainer.train()
"""

import math

import numpy as np

import gt
from gt import nn
from lpm.caption.decoding import GenerationConfig, generate_caption
from lpm.caption.metrics import exact_match
from lpm.caption.store import CaptionRunState, CaptionStore, read_caption_checkpoint
from lpm.interrupt import StopOnCtrlC, TrainingInterrupted
from lpm.outputs import progress_bar
from lpm.resume import NonFiniteLoss


class CaptionBatches:
    """A ``CaptionData`` set with its captions as token ids, served in batches (the data loader).

    ``ids`` (N, L) int64: ``[bos, words..., eos]`` padded with ``pad_id``; ``batch(rows)`` gives
    ``(images float32, ids)`` of those rows; ``len()`` is the number of batches of an epoch."""

    def __init__(self, data, vocab, batch_size, max_len=None):
        self.data, self.vocab, self.batch_size = data, vocab, batch_size
        self.ids, _ = vocab.encode_batch(list(data.captions), max_len=max_len)
        self.references = [vocab.decode(row) for row in self.ids]     # the captions as the vocabulary reads them

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def batch(self, rows):
        images, _ = self.data.batch(rows)
        return np.asarray(images, dtype=np.float32), self.ids[rows]

    def chunks(self):
        """The whole set in order, ``batch_size`` rows at a time: ``(rows, images, ids)``."""
        for first in range(0, len(self.data), self.batch_size):
            rows = np.arange(first, min(first + self.batch_size, len(self.data)))
            yield (rows, *self.batch(rows))


def warmup_cosine(warmup, total):
    """The lr factor of step s: linear warmup over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


class PixelLLMTrainer:
    """One run of ``model`` (a ``PixelLLM``) on ``train_dataloader`` (a ``CaptionBatches``), validated on
    ``val_dataloader``; ``config`` a ``CaptionTrainConfig`` with every field resolved; ``max_steps``
    (default: ``config.steps``) the run's length; ``info`` what the checkpoints say of the data."""

    def __init__(self, model, config, train_dataloader, val_dataloader, max_steps=None, blind=False, info=None,
                 log=print):
        cfg = config
        self.model, self.cfg, self.train_data, self.val_data, self.log = model, cfg, train_dataloader, \
            val_dataloader, log
        self.blind, self.use_amp = blind, cfg.autocast == "bfloat16"
        if self.use_amp and not gt.backend.B.supports_bfloat16:
            raise ValueError(f"--autocast bfloat16 needs the torch engine (GT_BACKEND=torch); the "
                             f"{gt.backend.B.name} engine has no bfloat16 arithmetic")
        self.max_steps = max_steps or cfg.steps
        self.val_interval = cfg.val_interval or len(train_dataloader)
        self.checkpoint_interval = cfg.checkpoint_interval
        self.optimizer = gt.optim.AdamW(gt.optim.decay_groups(model.parameters(), cfg.weight_decay), lr=cfg.lr,
                                        betas=(0.9, 0.98))
        self.scheduler = gt.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(cfg.warmup, self.max_steps))
        self.order_rng, self.epoch_order = np.random.default_rng(cfg.seed + 1), None
        self.state, self.bar, self.interrupt = CaptionRunState(), None, StopOnCtrlC(enabled=True)
        self.store = None
        if cfg.checkpoint_dir:
            info = dict(info or {}, blind=blind)
            self.store = CaptionStore(cfg, model, self.optimizer, self.scheduler, log, train_dataloader.vocab, info)
            restored = self.store.restore()
            if restored is not None:
                self.state, self.order_rng = restored

    # ---- the loop ----------------------------------------------------------------------------------
    def train(self):
        """Run to ``max_steps`` (from where a resumed checkpoint left off); returns the ``CaptionRunState``."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self.interrupt:
            try:
                while self.state.step < self.max_steps:
                    self.train_epoch()
            except TrainingInterrupted:
                raise
            except KeyboardInterrupt:       # a second Ctrl-C: at once, nothing saved
                self.close_bar()
                raise TrainingInterrupted(f"interrupted at step {self.state.step}; checkpoint: "
                                          f"{self.store.last if self.store else None}") from None
        return self.state

    def train_epoch(self):
        """The steps of one epoch (or what is left of it after a resumed checkpoint, or of ``max_steps``)."""
        state, steps = self.state, len(self.train_data)
        self.model.train()
        self.epoch_order = self.order_rng.bit_generator.state     # a mid-epoch checkpoint resumes from here
        perm = self.order_rng.permutation(len(self.train_data.data))
        last = min(steps, state.step_in_epoch + self.max_steps - state.step)
        self.bar = progress_bar(last - state.step_in_epoch, f"epoch {state.epoch + 1}", self.cfg.progress)
        for i in range(state.step_in_epoch, last):
            images, ids = self.train_data.batch(perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size])
            value = self.step(images, ids)
            state.step, state.step_in_epoch = state.step + 1, i + 1
            state.loss_sum, state.loss_steps = state.loss_sum + value, state.loss_steps + 1
            if state.step_in_epoch == steps:
                state.epoch, state.step_in_epoch = state.epoch + 1, 0
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{value:.3f}")
                self.bar.update()
            self.after_step()
        self.close_bar()

    def step(self, images, ids):
        """One optimizer step on a batch; returns its mean loss (nats per caption token)."""
        if self.blind:
            images = np.zeros_like(images)
        with gt.autocast("bfloat16", enabled=self.use_amp):
            loss = self.loss(gt.tensor(images), ids)
        value = loss.item()
        if not math.isfinite(value):
            raise self.diverged(f"the loss is {value} at step {self.state.step + 1}")
        self.optimizer.zero_grad()
        loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return value

    def loss(self, images, ids, reduction="mean"):
        """Token cross-entropy of the captions ``ids`` (N, L) given ``images``, pad ignored."""
        logits = self.model(images, gt.tensor(np.ascontiguousarray(ids[:, :-1])))       # (N, L-1, V)
        target = gt.tensor(np.ascontiguousarray(ids[:, 1:]).reshape(-1))
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target, reduction=reduction,
                                           ignore_index=self.train_data.vocab.pad_id)

    def after_step(self):
        """Validation and checkpoints when due; the stop asked by Ctrl-C."""
        state, done = self.state, self.state.step >= self.max_steps
        if state.step % self.val_interval == 0 or done:
            self.record(self.validate())
        elif self.store is not None and self.checkpoint_interval and state.step % self.checkpoint_interval == 0:
            self.save_checkpoint()
        if self.interrupt.requested and not done:
            self.close_bar()
            where = f"at step {state.step}/{self.max_steps}"
            if self.store is None:
                raise TrainingInterrupted(f"interrupted {where}; nothing was saved (no --checkpoint-dir)")
            self.save_checkpoint()
            raise TrainingInterrupted(f"interrupted {where}; checkpoint: {self.store.last}", self.store.last)

    def record(self, figures):
        """Log one validation, keep it in the state, checkpoint (``best`` when exact match improved)."""
        state = self.state
        train_loss = state.loss_sum / max(1, state.loss_steps)
        if not math.isfinite(figures["loss"]):
            raise self.diverged(f"the held-out loss is {figures['loss']} at step {state.step}")
        for name, value in (("val_steps", state.step), ("train_losses", train_loss), ("val_losses", figures["loss"]),
                            ("val_token_accs", figures["token_accuracy"]), ("val_exact", figures["exact_match"])):
            getattr(state, name).append(value)
        state.loss_sum, state.loss_steps = 0.0, 0
        best = figures["exact_match"] > state.best_exact
        if best:
            state.best_exact, state.best_step = figures["exact_match"], state.step
        self.log(f"{'Blind step' if self.blind else 'Step'} {state.step}/{self.max_steps} (epoch "
                 f"{state.epoch + state.step_in_epoch / len(self.train_data):.2f}): loss {train_loss:.3f}, held-out "
                 f"loss {figures['loss']:.3f}, token accuracy {figures['token_accuracy']:.1%}, exact match "
                 f"{figures['exact_match']:.1%}")
        if self.store is not None:
            self.save_checkpoint("best" if best else "latest")

    # ---- validation and checkpoints ---------------------------------------------------------------
    def validate(self):
        """``{"loss", "token_accuracy", "exact_match"}`` on the validation set: teacher-forced loss
        (nats per token) and next-token accuracy, and the exact match of greedy captions."""
        was_training, pad = self.model.training, self.val_data.vocab.pad_id
        self.model.eval()
        total = correct = count = 0.0
        predictions = []
        config = GenerationConfig(max_length=self.model.config.max_seq_len)
        with gt.no_grad():
            for _, images, ids in self.val_data.chunks():
                if self.blind:
                    images = np.zeros_like(images)
                x = gt.tensor(images)
                logits = self.model(x, gt.tensor(np.ascontiguousarray(ids[:, :-1]))).numpy()
                target = ids[:, 1:]
                keep = target != pad
                logp = logits - logits.max(-1, keepdims=True)
                logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
                total -= float(np.take_along_axis(logp, target[..., None], -1)[..., 0][keep].sum())
                correct += float((logits.argmax(-1) == target)[keep].sum())
                count += float(keep.sum())
                predictions += [self.val_data.vocab.decode(c) for c in generate_caption(self.model, x, config)]
        self.model.train(was_training)
        return {"loss": total / max(count, 1.0), "token_accuracy": correct / max(count, 1.0),
                "exact_match": exact_match(predictions, self.val_data.references), "predictions": predictions}

    def save_checkpoint(self, name="latest"):
        """Save the run now; ``name`` "best" or "final" also points ``best.json``/``final.json`` at it
        (the run's last step is always "final"). Returns the checkpoint folder."""
        state = self.state
        order = self.epoch_order if state.step_in_epoch else self.order_rng.bit_generator.state
        done = state.step >= self.max_steps
        return self.store.save(state, order, best=name == "best", final=name == "final" or done)

    def load_checkpoint(self, path):
        """Load the model, optimizer, schedule and progress of the Pixel LLM checkpoint at ``path``
        (a checkpoint folder, or a run's folder: its latest) to go on from there; returns it."""
        ckpt = read_caption_checkpoint(path)
        store = self.store or CaptionStore(self.cfg, self.model, self.optimizer, self.scheduler, self.log,
                                           self.train_data.vocab, {})
        self.state, self.order_rng = store.load(ckpt)
        return ckpt

    def diverged(self, what):
        self.close_bar()
        kept = f"; the last checkpoint stays: {self.store.last}" if self.store is not None and self.store.last else ""
        return NonFiniteLoss(f"{what}: try a smaller --lr (now {self.cfg.lr:g}){kept}")

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
