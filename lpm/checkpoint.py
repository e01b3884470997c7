"""Checkpoints that survive crashes: safetensors weights, a JSON file of the rest, atomic writes.

A checkpoint is a folder holding three files:

- ``model.safetensors``: the model's ``state_dict()`` under its usual keys (PyTorch users:
  ``safetensors.torch.load_file(path)`` gives a state dict for the same architecture);
- ``optimizer.safetensors``: the arrays of ``optimizer.state_dict()['state']``, under
  ``state.<parameter index>.<name>`` (e.g. ``state.0.exp_avg``);
- ``checkpoint.json``: everything else (model and training configuration, progress, random
  generator states, metrics, the optimizer's hyperparameters and scalar state), with the size
  and SHA-256 of both safetensors files and a checksum of itself.

A run's checkpoint folder (``--checkpoint-dir DIR``) holds such folders, named by epoch and
step, and small pointer files: ``DIR/latest.json`` and ``DIR/best.json`` (best held-out
accuracy) name the folder to use (and ``DIR/final.json``, in runs that mark their last epoch);
``DIR/previous.json`` the one before the latest (a second fallback, left in place, never copied).
Writing is atomic at every level: the files go into a temporary folder (each flushed and fsync'ed), which is renamed
into place, and only then is a pointer replaced (temporary file, fsync, ``os.replace``). A crash or a full disk at
any moment leaves the previous pointers naming complete checkpoints.

After each save, checkpoint folders no pointer names and leftovers of interrupted saves are removed, but only what
this module wrote: each folder it creates holds a marker file (``.lpm-checkpoint``, naming the folder) from its
first moment, and a folder is removed only if it carries that marker and holds nothing but checkpoint files. A
user's own ``epoch2024-step1/photo.txt``, ``.tmp-mycache/`` or ``notes.json.tmp-1`` stays, and so do checkpoint
folders written before the marker existed (they are read as before).

Reading never executes code from the file (safetensors and JSON only, no pickle) and checks
everything before anything is loaded: a foreign, truncated or corrupted checkpoint is a
``CheckpointError`` listing what is wrong, and the model and optimizer are left untouched.

    >>> path = save_checkpoint("runs/a", model, optimizer, {"progress": {"epoch": 1, "step": 30}})
    >>> ckpt = read_checkpoint("runs/a")          # the latest; "runs/a/best.json"'s with which="best"
    >>> load_into(ckpt, model, optimizer)
"""

import hashlib
import json
import os
import re
import secrets

import numpy as np

FORMAT, VERSION = "lpm-checkpoint", 1
MODEL_FILE, OPTIMIZER_FILE, META_FILE = "model.safetensors", "optimizer.safetensors", "checkpoint.json"
POINTERS = ("latest", "best", "final", "previous")
MARKER = ".lpm-checkpoint"      # inside every folder this module creates: the licence to remove it
_FOLDER = re.compile(r"^epoch(\d+)-step(\d+)(-\d+)?$")
_TEMP_FOLDER = re.compile(r"^\.tmp-(epoch\d+-step\d+(?:-\d+)?)-\d+-[0-9a-f]{8}$")
_TEMP_POINTER = re.compile(r"^(latest|best|final|previous)\.json\.tmp-\d+$")
_OWN_FILES = {MARKER, MODEL_FILE, OPTIMIZER_FILE, META_FILE}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, foreign, truncated, corrupted or from another configuration."""


class Checkpoint:
    """A checkpoint read and verified in memory: ``path``, ``meta`` (the JSON), ``model_state``
    (name -> numpy array) and ``optimizer_state`` (torch's ``optimizer.state_dict()`` layout)."""

    def __init__(self, path, meta, model_state, optimizer_state):
        self.path, self.meta = path, meta
        self.model_state, self.optimizer_state = model_state, optimizer_state

    def __repr__(self):
        progress = self.meta.get("progress", {})
        return f"Checkpoint({self.path!r}, epoch={progress.get('epoch')}, step={progress.get('step')})"


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise CheckpointError("checkpoints need safetensors: pip install safetensors") from None
    return safetensors.numpy


# ---- writing -------------------------------------------------------------------------------------
def save_checkpoint(root, model, optimizer, meta, best=False, final=False, keep=(), previous=None):
    """Write a checkpoint of ``model`` and ``optimizer`` with ``meta`` (a JSON-serialisable dict;
    ``meta['progress']['epoch'/'step']`` name the folder) under ``root``, point ``latest.json``
    at it (and ``best.json`` when ``best``, ``final.json`` when ``final``: a run's last epoch),
    point ``previous.json`` at ``previous`` (the checkpoint folder in ``root`` the run wrote or
    resumed from before this one; None: no previous, the pointer goes), and remove the checkpoint
    folders this module wrote that no pointer names and ``keep`` (folder names: the older
    checkpoints a run keeps, e.g. its last n) does not list. Returns its path.

    Refuses (``CheckpointError``, nothing written) weights or optimizer state that are not
    finite, and NaN or infinite numbers in ``meta``: a checkpoint is something to resume from."""
    st = _safetensors()
    model_state = {k: np.ascontiguousarray(v) for k, v in _array_state(model).items()}
    opt_arrays, opt_meta = flatten_optimizer_state(optimizer.state_dict()) if optimizer is not None else ({}, None)
    bad = [k for k, v in (*model_state.items(), *opt_arrays.items()) if not np.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"not saving a checkpoint with non-finite values (in {', '.join(bad[:3])}"
                              + (f" and {len(bad) - 3} more" if len(bad) > 3 else "") + ")")
    blobs = {MODEL_FILE: st.save(model_state), OPTIMIZER_FILE: st.save(opt_arrays)}
    meta = dict(meta, format=FORMAT, version=VERSION, optimizer=opt_meta,
                files={f: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for f, b in blobs.items()})
    meta.pop("checksum", None)
    try:                           # strict JSON: NaN has no place in a checkpoint
        meta["checksum"] = _checksum(meta)
        text = json.dumps(meta, indent=1, allow_nan=False)
    except ValueError:
        raise CheckpointError(f"not saving a checkpoint with NaN or infinite numbers in its metadata "
                              f"(metrics: {meta.get('metrics')})") from None
    if os.path.exists(root) and not os.path.isdir(root):     # os.makedirs would say only "File exists"
        raise CheckpointError(f"cannot save a checkpoint in {root}: it is a file, not a folder")
    os.makedirs(root, exist_ok=True)
    progress = meta.get("progress", {})
    name = f"epoch{int(progress.get('epoch', 0)):04d}-step{int(progress.get('step', 0)):08d}"
    taken, n = set(os.listdir(root)), 1
    while name in taken:                        # never replace a folder a pointer (or a user) may still name
        name, n = re.sub(r"(-\d+)?$", f"-{n}", name, count=1), n + 1
    tmp = os.path.join(root, f".tmp-{name}-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp)                               # the usual permissions (mkdtemp's are owner-only)
    try:
        marker = json.dumps({"format": FORMAT, "folder": name}).encode()
        for fname, data in [(MARKER, marker), *blobs.items(), (META_FILE, text.encode())]:
            _write_synced(os.path.join(tmp, fname), data)
        _fsync_dir(tmp)
        folder = os.path.join(root, name)
        os.rename(tmp, folder)
    except BaseException:
        _remove_own_folder(tmp, name, empty_too=True)
        raise
    _fsync_dir(root)
    pointer = {"checkpoint": name, "epoch": progress.get("epoch"), "step": progress.get("step"),
               "eval_acc": meta.get("metrics", {}).get("eval_acc")}
    _publish_previous(root, previous, name)     # before latest moves: a crash between leaves both whole
    _publish(root, "latest", pointer)
    if best:
        _publish(root, "best", pointer)
    if final:
        _publish(root, "final", pointer)
    _clean(root, keep)
    return folder


def checkpoint_folders(root):
    """The names of the checkpoint folders in ``root``, oldest first (their names sort by epoch and step)."""
    try:
        return sorted(e for e in os.listdir(root) if _FOLDER.match(e) and os.path.isdir(os.path.join(root, e)))
    except OSError:
        return []


def _publish(root, which, pointer):
    """Atomically replace ``root/<which>.json``; never a file of that name that is not a pointer."""
    path = os.path.join(root, which + ".json")
    if os.path.lexists(path) and _read_pointer(root, which) is None:
        raise CheckpointError(f"{path} is not a checkpoint pointer: not replacing it (move it away, or choose "
                              f"another --checkpoint-dir)")
    tmp = f"{path}.tmp-{os.getpid()}"
    _write_synced(tmp, json.dumps(pointer).encode())
    os.replace(tmp, path)
    _fsync_dir(root)


def _publish_previous(root, previous, name):
    """Point ``root/previous.json`` at ``previous``, another checkpoint folder of ``root``; else drop it."""
    prev, parent = (os.path.basename(os.path.normpath(previous)), os.path.dirname(os.path.normpath(previous))
                    or ".") if previous else (None, None)
    if prev and prev != name and _FOLDER.match(prev) and os.path.isdir(os.path.join(root, prev)) \
            and os.path.isdir(parent) and os.path.samefile(parent, root):
        epoch, step = (int(g) for g in _FOLDER.match(prev).groups()[:2])
        _publish(root, "previous", {"checkpoint": prev, "epoch": epoch, "step": step})
    elif _read_pointer(root, "previous") is not None:
        _remove_quietly(os.path.join(root, "previous.json"))
        _fsync_dir(root)


def _write_synced(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())       # on disk before the rename makes it visible


def _fsync_dir(path):
    # A rename is durable only once its folder is synced; not every platform can open a folder.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _clean(root, keep=()):
    """Remove the checkpoint folders this module wrote that no pointer names and ``keep`` does not
    list, and the leftovers of interrupted saves (temporary folders and pointer files). Anything
    else stays."""
    keep = {_read_pointer(root, which) for which in POINTERS} | {os.path.basename(k) for k in keep}
    for entry in os.listdir(root):
        full, temp = os.path.join(root, entry), _TEMP_FOLDER.match(entry)
        if temp:
            _remove_own_folder(full, temp.group(1), empty_too=True)
        elif _FOLDER.match(entry) and entry not in keep:
            _remove_own_folder(full, entry)
        elif _TEMP_POINTER.match(entry) and _is_own_pointer_file(full):
            _remove_quietly(full)


def _remove_own_folder(path, name, empty_too=False):
    """Remove ``path`` if this module wrote it: a real folder whose marker names ``name`` and which
    holds nothing but checkpoint files (or, ``empty_too``, an empty temporary folder: a save cut
    short before its marker). Anything else is left as it is."""
    if os.path.islink(path) or not os.path.isdir(path):
        return
    try:
        entries = set(os.listdir(path))
        if (entries or not empty_too) and not _own_marker(os.path.join(path, MARKER), name):
            return                       # a user's folder, or one written before the marker existed
    except OSError:
        return
    if not entries <= _OWN_FILES or not all(os.path.isfile(os.path.join(path, e)) for e in entries):
        return                           # something else inside: not ours to remove
    for entry in sorted(entries - {MARKER}) + [MARKER] * (MARKER in entries):   # the marker last
        if not _remove_quietly(os.path.join(path, entry)):
            return
    try:
        os.rmdir(path)                   # fails, harmlessly, if anything appeared meanwhile
    except OSError:
        pass


def _own_marker(path, name):
    try:
        with open(path, "rb") as f:
            marker = json.loads(f.read(4096).decode())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == FORMAT and marker.get("folder") == name


def _is_own_pointer_file(path):
    """A pointer's temporary file as ``_publish`` writes it: empty (cut short) or a pointer."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
        pointer = json.loads(data.decode()) if data else {"checkpoint": "epoch0-step0"}
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(pointer, dict) and isinstance(pointer.get("checkpoint"), str) \
        and bool(_FOLDER.match(pointer["checkpoint"]))


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def _read_pointer(root, which):
    try:
        with open(os.path.join(root, which + ".json")) as f:
            name = json.load(f)["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and _FOLDER.match(name) else None


def _checksum(meta):
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def flatten_optimizer_state(state_dict):
    """torch's ``optimizer.state_dict()`` -> (arrays for safetensors, JSON-serialisable rest).

    Arrays go under ``state.<index>.<name>``; numbers (Adam's ``step``) into ``scalars``."""
    arrays, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.{index}.{name}"] = np.ascontiguousarray(value)
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return arrays, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(arrays, meta):
    """The inverse of ``flatten_optimizer_state``."""
    state = {}
    for key, value in arrays.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entries in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


# ---- reading -------------------------------------------------------------------------------------
def find_checkpoint(path, which="latest"):
    """The checkpoint folder ``path`` means: itself if it holds ``checkpoint.json``, else the one
    ``path/<which>.json`` names. None if ``path`` holds neither (e.g. a new run's folder)."""
    if which not in POINTERS:       # "lastest" would read as a run with no checkpoint
        raise ValueError(f"which must be one of {POINTERS}, got {which!r}")
    if os.path.isfile(os.path.join(path, META_FILE)):
        return path
    name = _read_pointer(path, which)
    if name is None:
        if os.path.exists(os.path.join(path, which + ".json")):
            raise CheckpointError(f"{os.path.join(path, which + '.json')} is not a valid checkpoint pointer "
                                  f"(expected {{\"checkpoint\": \"epochNNNN-stepNNNNNNNN\"}})")
        return None
    return os.path.join(path, name)


def read_checkpoint(path, which="latest"):
    """Read and verify the checkpoint at ``path`` (a checkpoint folder, or a run's folder: its
    ``which`` checkpoint). Raises ``CheckpointError`` listing every problem found."""
    folder = find_checkpoint(path, which)
    if folder is None:
        raise CheckpointError(f"no checkpoint in {path}: expected {path}/{META_FILE} or {path}/{which}.json")
    meta_path = os.path.join(folder, META_FILE)
    try:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read().decode())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: not a checkpoint ({META_FILE} is missing)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: corrupted or truncated, not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path}: not an LPM checkpoint (format {found!r}, expected {FORMAT!r})")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise CheckpointError(f"{meta_path}: checkpoint version {meta.get('version')!r}; this lpm reads "
                              f"versions up to {VERSION}")
    problems = []
    if meta.get("checksum") != _checksum(meta):
        problems.append(f"{META_FILE}: its contents do not match its checksum (corrupted or edited)")
    blobs = {}
    for fname in (MODEL_FILE, OPTIMIZER_FILE):
        expected = (meta.get("files") or {}).get(fname)
        fpath = os.path.join(folder, fname)
        if not isinstance(expected, dict):
            problems.append(f"{fname}: not listed in {META_FILE}")
            continue
        try:
            with open(fpath, "rb") as f:
                data = f.read()
        except OSError as exc:
            problems.append(f"{fname}: cannot read ({exc.strerror or exc})")
            continue
        if len(data) != expected.get("bytes"):
            problems.append(f"{fname}: {len(data)} bytes, the checkpoint recorded {expected.get('bytes')} "
                            f"({'truncated' if len(data) < (expected.get('bytes') or 0) else 'changed'})")
        elif hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            problems.append(f"{fname}: contents do not match the SHA-256 recorded (corrupted)")
        else:
            blobs[fname] = data
    if problems:
        raise CheckpointError(f"checkpoint {folder} is damaged:\n  " + "\n  ".join(problems))
    st = _safetensors()
    try:
        model_state = st.load(blobs[MODEL_FILE])
        optimizer_arrays = st.load(blobs[OPTIMIZER_FILE])
    except Exception as exc:              # the bytes match their checksum, so the writer made them wrong
        raise CheckpointError(f"checkpoint {folder}: unreadable safetensors data ({exc})") from None
    optimizer_state = None
    if meta.get("optimizer") is not None:
        try:
            optimizer_state = unflatten_optimizer_state(optimizer_arrays, meta["optimizer"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint {folder}: malformed optimizer state ({exc!r})") from None
    return Checkpoint(folder, meta, model_state, optimizer_state)


def _array_state(model):
    """``model.state_dict()``, refused (CheckpointError) where it holds something other than arrays:
    a module's ``get_extra_state()``, which safetensors cannot hold."""
    state = model.state_dict()
    other = [k for k, v in state.items() if not isinstance(v, np.ndarray)]
    if other:
        raise CheckpointError(f"the model's state dict holds {type(state[other[0]]).__name__} under {other[0]!r} "
                              "(a module's get_extra_state()); checkpoints hold arrays only: save such a model "
                              "with gt.save(model.state_dict(), path)")
    return state


def state_problems(model, state):
    """What keeps ``state`` (name -> array) from loading into ``model``: missing and unexpected
    keys, shape and dtype mismatches, non-finite values. An empty list if it fits."""
    own = _array_state(model)
    problems = [f"missing: {k} {tuple(v.shape)}" for k, v in own.items() if k not in state]
    problems += [f"unexpected: {k} {tuple(np.shape(v))}" for k, v in state.items() if k not in own]
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            problems.append(f"{key}: shape {tuple(value.shape)} in the checkpoint, "
                            f"{tuple(own[key].shape)} in the model")
        elif key in own and not np.isfinite(value).all():
            problems.append(f"{key}: non-finite values")
    return problems


def optimizer_problems(optimizer, state_dict):
    """What keeps ``state_dict`` from loading into ``optimizer`` (group count and sizes, state shapes)."""
    if state_dict is None:
        return ["the checkpoint has no optimizer state"]
    groups, saved = optimizer.param_groups, state_dict["param_groups"]
    if len(saved) != len(groups):
        return [f"optimizer: {len(saved)} parameter group(s) in the checkpoint, {len(groups)} in this run"]
    problems, params = [], []
    for i, (s, g) in enumerate(zip(saved, groups)):
        if len(s["params"]) != len(g["params"]):
            problems.append(f"optimizer group {i}: {len(s['params'])} parameters in the checkpoint, "
                            f"{len(g['params'])} in this run")
        params += list(zip(s["params"], g["params"]))
    by_index = dict(params)
    for index, entries in state_dict["state"].items():
        p = by_index.get(int(index))
        if p is None:
            problems.append(f"optimizer state for parameter {index}, which no group lists")
            continue
        for name, value in entries.items():
            if isinstance(value, np.ndarray) and value.ndim and tuple(value.shape) != tuple(p.shape):
                problems.append(f"optimizer state.{index}.{name}: shape {tuple(value.shape)}, "
                                f"parameter {tuple(p.shape)}")
    return problems


def load_into(ckpt, model, optimizer=None):
    """Load ``ckpt`` into ``model`` (and ``optimizer``): all or nothing.

    Everything is checked first; ``CheckpointError`` lists every mismatch and nothing changes."""
    problems = state_problems(model, ckpt.model_state)
    if optimizer is not None:
        problems += optimizer_problems(optimizer, ckpt.optimizer_state)
    if problems:
        raise CheckpointError(f"checkpoint {ckpt.path} does not fit this model:\n  " + "\n  ".join(problems))
    before = model.state_dict()
    model.load_state_dict(ckpt.model_state)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(ckpt.optimizer_state)
        except (ValueError, TypeError, KeyError) as exc:
            model.load_state_dict(before)       # all or nothing
            raise CheckpointError(f"checkpoint {ckpt.path}: optimizer state does not fit ({exc})") from None
