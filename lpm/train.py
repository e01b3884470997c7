"""Training the Pixel Transformer: the loop behind ``python train.py`` and ``lpm train``.

Readable top to bottom, like nanoGPT's train.py: the data (``make_datasets``; the data sets
live in ``lpm.data``), one batch (``get_batch``), the loss, the optimizer, ``evaluate``, then
``train``: ``setup``, for each epoch ``train_epoch`` (``train_step`` by step) and ``end_epoch``
(held-out figures, log line, checkpoint), and ``summary``; then ``main``. The options
(``TrainConfig`` and the command line generated from it) live in ``lpm.config``; what a run
holds between steps (``Run``) in ``lpm.run``; checkpoints and exact resume in ``lpm.resume``
and ``lpm.checkpoint``. Each helper is importable on its own for tests and notebooks:

    >>> from lpm.train import TrainConfig, train
    >>> result = train(TrainConfig(samples=32, seq_len=4, img_size=16, embed_dim=16, num_heads=2,
    ...                            ff_dim=32, epochs=2, batch_size=8), log=lambda line: None)
    >>> len(result["losses"])
    2
"""

import contextlib
import math
import os
import sys
import time
from dataclasses import asdict

import numpy as np

import gt
import gt.distributed as dist
from gt import nn
from gt.sharding import get_mesh, use_mesh
from lpm import plots
from lpm.checkpoint import CheckpointError, find_checkpoint
from lpm.config import TrainConfig, build_parser, default_lr, parse_args  # noqa: F401  (TrainConfig: re-exported)
from lpm.config import check_start, missing_packages, path_problems
from lpm.data import DIRECTIONS, Data, DataError, load_data
from lpm.interrupt import TrainingInterrupted, print_alternatives, resume_command
from lpm.memory import classes_problem, model_config, run_problem
from lpm.model import PixelTransformer
from lpm.options import check_environment
from lpm.outputs import OutputError, progress_bar, silence_stdout
from lpm.resume import SaveFailed
from lpm.resume import NonFiniteLoss
from lpm.run import Run

# ---- data ---------------------------------------------------------------------------------
def make_datasets(cfg):
    """``(train_images, train_labels), (eval_images, eval_labels)``, centred.

    Pixels are shifted by the training set's mean pixel value. Left in [0, 1], every frame
    shares a large constant component that dominates the embedding's gradient and forces a
    much smaller learning rate on plain gradient descent. ``lpm.data.load_data(cfg)`` gives
    the same with the class names and the offset.
    """
    data = load_data(cfg)
    return (data.train_images, data.train_labels), (data.eval_images, data.eval_labels)


def _as_data(data, cfg):
    """``train(data=...)`` takes a ``Data`` or ``make_datasets``' pair of pairs (the blob classes),
    checked (``Data.problem``) before any work."""
    if not isinstance(data, Data):
        try:
            (x_train, y_train), (x_eval, y_eval) = data
        except (TypeError, ValueError):
            raise TypeError("train: data must be an lpm.data.Data or ((train_images, train_labels), (eval_images, "
                            f"eval_labels)), got {type(data).__name__}") from None
        data = Data(x_train, np.asarray(y_train), x_eval, np.asarray(y_eval), DIRECTIONS, "direction of motion")
    problem = data.problem(cfg.img_size)
    if problem:
        raise DataError(f"train: data: {problem}")
    return data


def get_batch(images, labels, idx):
    """The sequences at positions ``idx`` as gt tensors: images (B, S, H, W) float32, labels (B,) int64.

    ``images`` is an array or a lazy ``lpm.data.base.SequenceDataset``, which reads only these sequences.

        >>> x, y = get_batch(np.zeros((5, 2, 4, 4), np.float32), np.arange(5), [0, 3])
        >>> x.shape, y.tolist()
        ((2, 2, 4, 4), [0, 3])
    """
    return gt.from_numpy(np.ascontiguousarray(images[idx])), gt.from_numpy(np.asarray(labels[idx]))


# ---- loss, optimizer, evaluation --------------------------------------------------------
def compute_loss(logits, targets, kind, num_classes):
    """``ce``: cross-entropy on class indices; ``mse``: mean squared error against one-hot rows."""
    if kind == "ce":
        return nn.functional.cross_entropy(logits, targets)
    return nn.mse_loss(logits, nn.functional.one_hot(targets, num_classes))


def make_optimizer(model, cfg, train_size=None):
    """The optimizer ``cfg`` names. With weight decay, two parameter groups (nanoGPT's habit):
    decay on >= 2-D parameters (matrices), none on biases and norm gains. The default lr scales
    with the batch a step really holds: no more than the ``train_size`` training sequences."""
    params = list(model.parameters())
    batch = min(cfg.batch_size, train_size) if train_size else cfg.batch_size
    lr = cfg.lr if cfg.lr is not None else default_lr(cfg.optimizer, batch, cfg.dataset)
    if cfg.weight_decay > 0:
        params = gt.optim.decay_groups(params, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        # Stepping inside the backward (plain SGD: fused into the weight-gradient gemms) gives the
        # same parameters, to one rounding, faster; not across processes, whose gradients must
        # be all-reduced after the backward, before any update.
        return gt.optim.SGD(params, lr=lr, momentum=cfg.momentum, in_backward=dist.get_world_size() == 1)
    if cfg.optimizer == "adam":
        return gt.optim.Adam(params, lr=lr)
    return gt.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer, cfg, total_steps):
    """The ``--lr-schedule``: None (constant), or cosine decay to 0, stepped after every optimizer step."""
    if cfg.lr_schedule == "constant":
        return None
    return gt.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


def evaluate(model, images, labels, batch_size=64, loss="ce", distributed=False):
    """``(mean loss, accuracy)`` of ``model`` on the given sequences, in eval mode, without a tape.

    ``distributed``: in a multi-process run (``gt.distributed``) each process evaluates its
    contiguous share and the sums are all-reduced, so every process gets the figures of the
    whole set (every process must call it)."""
    n = len(labels)
    start, stop = dist.split_range(n) if distributed else (0, n)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    with gt.no_grad():
        for first in range(start, stop, batch_size):
            x, y = get_batch(images, labels, np.arange(first, min(first + batch_size, stop)))
            logits = model(x)
            total_loss += compute_loss(logits, y, loss, model.config.num_classes).item() * len(y)
            correct += int((logits.argmax(axis=-1) == y).sum().item())
    model.train(was_training)
    if distributed and dist.get_world_size() > 1:
        total_loss, correct = dist.all_reduce_sum([total_loss, correct])
    return total_loss / n, correct / n


# ---- the loop: set-up, one epoch at a time, summary ---------------------------------------
def train(cfg, log=print, data=None):
    """Load the data, build the model and optimizer, train, and return what happened:

    ``{"losses", "train_accs", "eval_losses", "eval_accs", "eval_acc", "parameters", "seconds",
    "samples_per_s", "model", "config", "data", "checkpoint", "plots"}`` (the first four per epoch).
    ``log`` receives each output line; ``data`` may pass a ready ``lpm.data.Data`` or
    ``make_datasets`` output. With ``cfg.checkpoint_dir`` a checkpoint is saved after every
    epoch (and every ``cfg.save_every`` steps or ``cfg.save_every_minutes``); ``cfg.resume``
    continues the run saved there.
    Refuses a bad ``cfg`` or ``data`` before any work (``check_start``, ``Data.problem``). Raises
    ``NonFiniteLoss`` naming the epoch and step (the last checkpoint is kept; none with
    non-finite values is written), ``DataError`` for bad data, ``CheckpointError`` for a
    checkpoint that does not fit or cannot be written, ``OutputError`` for an output folder that
    cannot be written (checked before the data is loaded) and ``TrainingInterrupted`` on Ctrl-C
    (the first lets the step in progress finish and saves there; a second stops at once).

    Data parallel over processes once ``gt.distributed.init()`` has joined a group of them
    (``main`` does, under torchrun): every process builds the same data and model, computes the
    loss on its contiguous slice of each global batch (``--batch-size`` sequences, as in one
    process) and the gradients are all-reduced, weighted by each slice's share of the batch, so
    the run computes what one process would. Only rank 0 logs and writes files.
    """
    check_start(cfg)
    return _train(cfg, log, data)


def _train(cfg, log, data):
    """``train`` once ``cfg`` is checked (``main`` checked it, ``check_before_work``)."""
    if not cfg.shard and get_mesh().size > 1:
        with use_mesh(1):  # the mesh was fixed before this call (e.g. in a notebook): leave it aside
            return _train(cfg, log, data)
    run = setup(cfg, log, data)
    try:
        # A diverging run overflows: it is caught below as a non-finite loss, so numpy's own
        # warnings about it would only repeat the news, several lines long.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), run.interrupt:
            for epoch in range(run.state.epoch + 1, cfg.epochs + 1):
                train_epoch(run, epoch)
                end_epoch(run, epoch)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:       # a second Ctrl-C, or one in a multi-process run: at once
        raise run.interrupted() from None
    return summary(run)


def setup(cfg, log, data=None):
    """Everything before the first step, as a ``Run`` (``cfg`` checked by ``train``): the data
    loaded, the model, optimizer and schedule built, the run described in the log, and the
    checkpoint in ``cfg.checkpoint_dir`` restored when resuming."""
    data = _as_data(data, cfg) if data is not None else None
    t0 = time.perf_counter()
    show_progress = cfg.progress and dist.is_main_process()
    data = data or load_data(cfg, progress=lambda n, desc: progress_bar(n, desc, show_progress, unit="sequence"))
    too_large = classes_problem(cfg, data.num_classes)      # the classes are known only now
    if too_large:
        raise DataError(too_large)
    gt.manual_seed(cfg.seed)
    model = PixelTransformer(**model_config(cfg, data.num_classes))
    optimizer = make_optimizer(model, cfg, len(data.train_labels))
    steps = (len(data.train_labels) + cfg.batch_size - 1) // cfg.batch_size
    run = Run(cfg, log, data, model, optimizer, make_scheduler(optimizer, cfg, cfg.epochs * steps), t0)
    describe(run)
    run.restore()
    run.t_train = run.t_saved = time.perf_counter()
    return run


def describe(run):
    """The log lines before training: the devices, the data, the model and the optimizer."""
    cfg, data, log, mesh = run.cfg, run.data, run.log, get_mesh()
    log(f"Devices: {mesh.describe()}, engine {gt.get_backend()}"
        + (f", {run.world} processes ({dist.get_backend()})" if run.world > 1 else "")
        + (", each batch split along its first axis" if mesh.size > 1 or run.world > 1 else ""))
    log(f"Data: {len(data.train_labels)} training + {len(data.eval_labels)} held-out sequences of {cfg.seq_len} "
        f"{cfg.img_size}x{cfg.img_size} images, {data.num_classes} classes ({data.description})")
    for note in data.notes:
        log(f"Note: {note}")
    log(f"Model: {run.model.num_parameters():,} parameters (embed_dim={cfg.embed_dim}, num_layers={cfg.num_layers}, "
        f"num_heads={cfg.num_heads}, ff_dim={cfg.ff_dim}" + (", a class token" if cfg.pool == "cls" else "")
        + f"); optimizer {cfg.optimizer}, "
        f"lr {run.optimizer.param_groups[0]['lr']:g}"
        + (f" ({cfg.lr_schedule})" if run.scheduler is not None else "")
        + (", stepping inside the backward" if run.optimizer.in_backward else "") + f", loss {cfg.loss}")


def train_epoch(run, epoch):
    """The optimizer steps of one epoch (from a resumed checkpoint's step, part way), with the
    saves every ``--save-every`` steps or ``--save-every-minutes``, and a stop at a Ctrl-C."""
    state, steps, bs = run.state, run.steps, run.cfg.batch_size
    run.model.train()
    epoch_order = run.order_rng.bit_generator.state   # a mid-epoch checkpoint resumes from here
    perm = run.order_rng.permutation(len(run.data.train_labels))
    run.bar = progress_bar(steps, f"epoch {epoch}", run.show_progress)
    if run.bar is not None and state.step_in_epoch:
        run.bar.update(state.step_in_epoch)
    for step in range(state.step_in_epoch, steps):
        batch = perm[step * bs:(step + 1) * bs]
        value, correct = train_step(run, batch, f"epoch {epoch}, step {step + 1}/{steps}")
        state.step, state.step_in_epoch = state.step + 1, step + 1
        state.loss_sum += value * len(batch)
        state.correct += correct
        run.samples_run += len(batch)
        if run.bar is not None:
            run.bar.set_postfix(loss=f"{value:.4f}")
            run.bar.update()
        if step + 1 < steps:          # the epoch's last step ends with its evaluation and save
            if run.save_due():
                run.save(epoch_order, f"epoch {epoch}, step {step + 1}/{steps}")
            if run.interrupt.requested:
                raise run.interrupted(epoch_order)
    run.close_bar()


def train_step(run, batch, where):
    """One optimizer step on the sequences ``batch`` (indices); ``(mean loss, correct count)`` of
    the whole batch. Each process computes its contiguous slice (all of it in one process)."""
    cfg, model = run.cfg, run.model
    lo, hi = dist.split_range(len(batch))
    loss, value, correct = None, 0.0, 0
    if hi > lo:
        x, y = get_batch(run.data.train_images, run.data.train_labels, batch[lo:hi])
        with gt.autocast(cfg.autocast) if cfg.autocast else contextlib.nullcontext():
            logits = model(x)                          # (b, C)
            loss = compute_loss(logits, y, cfg.loss, run.data.num_classes)
        value, correct = loss.item(), int((logits.argmax(axis=-1) == y).sum().item())
    if run.world > 1:   # the whole batch's mean loss and correct count, the same in every process
        loss_sum, correct = dist.all_reduce_sum([value * (hi - lo), correct])
        value, correct = loss_sum / len(batch), round(correct)
    if not math.isfinite(value):
        raise run.diverged(f"loss is {value}", where)
    run.optimizer.zero_grad()
    if loss is not None:
        loss.backward()
    if run.world > 1:   # every process: the gradient of the whole batch's mean loss
        dist.all_reduce_grads(model.parameters(), weight=(hi - lo) / len(batch))
    run.optimizer.step()
    if run.scheduler is not None:
        run.scheduler.step()
    return value, correct


def end_epoch(run, epoch):
    """After an epoch's last step: evaluate on the held-out sequences, record and log the epoch,
    save a checkpoint (marked best when it is), and stop there at a Ctrl-C."""
    cfg, state, n = run.cfg, run.state, len(run.data.train_labels)
    eval_loss, eval_acc = evaluate(run.model, run.data.eval_images, run.data.eval_labels,
                                   batch_size=max(cfg.batch_size, 32), loss=cfg.loss, distributed=True)
    if not math.isfinite(eval_loss):
        raise run.diverged(f"held-out loss is {eval_loss}", f"the end of epoch {epoch} (step {state.step})")
    state.losses.append(state.loss_sum / n)
    state.train_accs.append(state.correct / n)
    state.eval_losses.append(eval_loss)
    state.eval_accs.append(eval_acc)
    state.epoch, state.step_in_epoch, state.loss_sum, state.correct = epoch, 0, 0.0, 0
    best = eval_acc > state.best_eval_acc
    if best:
        state.best_eval_acc, state.best_epoch = eval_acc, epoch
    width = max(2, len(str(cfg.epochs)))
    run.log(f"Epoch {epoch:{width}d}/{cfg.epochs}: Loss = {state.losses[-1]:.4f}, "
            f"Acc = {100 * state.train_accs[-1]:.2f}%, Held-out Acc = {100 * eval_acc:.2f}%")
    run.save(run.order_rng.bit_generator.state, f"the end of epoch {epoch} (step {state.step})", best=best)
    if run.interrupt.requested and epoch < cfg.epochs:
        raise run.interrupted(run.order_rng.bit_generator.state)


def summary(run):
    """After the last epoch: the plots, the log's closing lines, and ``train``'s result."""
    cfg, state, model, data = run.cfg, run.state, run.model, run.data
    seconds, train_seconds, samples_per_s = run.elapsed()
    written = []
    if cfg.plot and run.main_process:
        written = save_plots(cfg.plot, state, model, data)
        run.log(f"Plots: {', '.join(written)}")
    if run.writer is not None and run.writer.last is not None:
        run.log(f"Checkpoints: {cfg.checkpoint_dir} (latest: {os.path.basename(run.writer.last[0])}; best held-out "
                f"accuracy {100 * state.best_eval_acc:.2f}% at epoch {state.best_epoch})")
    n_params = model.num_parameters()
    eval_acc = state.eval_accs[-1] if state.eval_accs else float("nan")
    run.log(f"Done in {seconds:.1f} s (setup {run.t_train - run.t0:.1f} s, training {train_seconds:.1f} s, "
            f"{samples_per_s:.1f} samples/s), {n_params:,} parameters. "
            f"Held-out accuracy: {100 * eval_acc:.2f}% on {len(data.eval_labels)} sequences")
    return dict(losses=state.losses, train_accs=state.train_accs, eval_losses=state.eval_losses,
                eval_accs=state.eval_accs, eval_acc=eval_acc, parameters=n_params, seconds=seconds,
                samples_per_s=samples_per_s, model=model, config=asdict(cfg), data=data,
                checkpoint=run.saver.last[0] if run.saver is not None and run.saver.last else None, plots=written)


def save_plots(folder, state, model, data):
    """``lpm.plots.save_plots``, with a folder that cannot be written told as an ``OutputError``."""
    try:
        return plots.save_plots(folder, state, model, data)
    except OSError as exc:     # e.g. a full disk: the checkpoints, if any, are written already
        raise OutputError(f"cannot write the plots in {folder} ({exc.strerror or exc})") from None


def main(argv=None, prog="train.py"):
    """``python train.py [flags]`` (or ``lpm train``): parse, train, print one line per epoch and a summary.

    Exit status: 0 done, 1 stopped (bad data, a checkpoint that does not fit or cannot be
    written, a non-finite loss, a bad torchrun environment), 2 invalid options, GT_* variables,
    output folders that cannot be written or a run too large for the memory available (all
    checked before any data is loaded), 130 interrupted (Ctrl-C; with a checkpoint folder, the
    ``--resume`` command that continues is printed). Messages go to stderr as one ``prog: ...``
    line (or a few, listing problems). Under torchrun (WORLD_SIZE > 1) the processes train
    together, data parallel (see ``train``); rank 0 prints.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    cfg = parse_args(argv, parser)
    check_before_work(cfg, parser)
    # The script owns its process: freed memory stays for the next step (gt/backend/memory.py)
    gt.retain_freed_memory()
    try:
        dist.init()
    except (ValueError, ImportError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    # the error lines of rank 0; other processes name themselves (their errors may be their own)
    who = prog if dist.is_main_process() else f"{prog} (rank {dist.get_rank()})"
    try:
        _train(cfg, print, None)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's flush at exit
    except NonFiniteLoss as exc:   # every process sees the same loss: rank 0 tells
        if dist.is_main_process():
            print(f"{prog}: stopped: {exc}", file=sys.stderr)
        sys.exit(1)
    except (DataError, CheckpointError, OutputError) as exc:
        print(f"{who}: error: {exc}", file=sys.stderr)
        if isinstance(exc, SaveFailed):
            _print_resume(cfg, argv, prog, "to continue once it can be written")
        print_alternatives(exc, argv, prog)       # a damaged checkpoint (DamagedLatest)
        sys.exit(1)
    except BrokenPipeError:     # stdout's reader went away (| head): stop without a word, as cat would
        silence_stdout()
        sys.exit(1)
    except KeyboardInterrupt as exc:     # TrainingInterrupted says where; before training, nothing to say
        if dist.is_main_process():
            print(f"{prog}: {exc if isinstance(exc, TrainingInterrupted) else 'interrupted'}", file=sys.stderr)
            _print_resume(cfg, argv, prog, "to continue")
        sys.exit(130)
    finally:
        dist.destroy()


def check_before_work(cfg, parser):
    """Refuse (exit 2, one line) what would fail later: the environment, missing packages, input
    paths that do not exist, output folders that cannot be written and a run too large for
    memory; then set GT_AUTO_SHARD."""
    check_environment(parser)       # GT_BACKEND, GT_DEVICES, ...: before anything reads them
    missing = missing_packages(cfg)
    if missing:
        parser.error(missing[0])
    problems = path_problems(cfg)
    if problems:                 # not an option's spelling: no "see --help"
        parser.refuse(problems[0][1])
    too_large = run_problem(cfg)    # before any data or weight is allocated
    if too_large:
        parser.refuse(too_large)
    # Sharding is on by default, as in the seed project, so that a multi-GPU box uses every GPU
    # with no setting; an explicit GT_AUTO_SHARD (e.g. 0) in the environment wins.
    if cfg.shard:
        os.environ.setdefault("GT_AUTO_SHARD", "1")
    else:
        os.environ["GT_AUTO_SHARD"] = "0"
    if cfg.autocast and not gt.backend.B.supports_bfloat16:
        parser.error(f"--autocast {cfg.autocast} needs the torch engine (the {gt.get_backend()} engine has no "
                     "bfloat16): GT_BACKEND=torch, with pip install 'lpm[torch]'")


def _print_resume(cfg, argv, prog, why):
    """The ``--resume`` command, on stderr, when ``cfg.checkpoint_dir`` holds a checkpoint."""
    try:
        holds = cfg.checkpoint_dir and os.path.isdir(cfg.checkpoint_dir) and find_checkpoint(cfg.checkpoint_dir)
    except CheckpointError:
        holds = False
    if holds:
        print(f"{prog}: {why}: {resume_command(argv, prog, checkpoint=holds)}", file=sys.stderr)
