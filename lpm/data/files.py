"""The user's own image sequences, in the layouts people have (``--data PATH``).

- ``PATH/<class>/<sequence>/<frame>.png`` (or .jpg, .jpeg, .bmp, .tif, .tiff, .webp, .gif):
  one folder of frames per sequence, frames in name order with numbers compared as numbers
  (``frame2`` before ``frame10``);
- ``PATH/<class>/<sequence>.npy``: one array per sequence, (frames, H, W) or (frames, H, W, C);
- ``PATH.npz``, or ``.npz`` files in the folder PATH: ``images`` (N, frames, H, W) and ``labels``
  (N,) integers, optionally ``class_names`` (K,) strings (else the classes are named "0".."K-1").

The layouts may be mixed in one folder: a class is a folder name or an .npz class name, and the
classes of a folder are numbered in sorted order of their names; an .npz's sequences join the
class folder of the same name. Extensions are compared in any case (``GOOD.NPZ``). Every class
needs a sequence; their number is bounded only by the memory the model's head and a batch's
logits need (checked once the data is read: ``lpm.memory.classes_problem``).

Frames become grayscale in [0, 1] (8-bit values / 255, 16-bit / 65535, floats as they are;
colour through Pillow's luma weights) and are resized to ``img_size x img_size`` with Pillow
(bilinear, antialiased when shrinking); frames without pixels (a (5, 0, 20) array) are refused.
A sequence with fewer than ``seq_len`` frames is padded by repeating its last frame; a longer
one keeps its first ``seq_len`` frames; the data set's ``notes`` say how many were changed.

Nothing executes code from a file: arrays are read with ``allow_pickle=False``.

When opened, every sequence is read once to check it (a corrupt image, a truncated array or a
non-finite pixel is a ``DataError`` naming the file, or, with ``skip_bad=True``, skipped and
counted). Afterwards frames are read again when indexed, unless the whole data set fits in
``cache_bytes`` (1 GiB by default), in which case the decoded frames of that first read are
kept: a data set larger than memory trains from disk, a small one from memory.
"""

import os
import zipfile

import numpy as np

from lpm.data.base import DataError, SequenceDataset, has_extension, short_list
from lpm.data.frames import natural_key, prepare, read_sequence, sequence_length

CACHE_BYTES = 1 << 30


def open_dataset(path, seq_len=8, img_size=200, skip_bad=False, cache_bytes=CACHE_BYTES, progress=None,
                 flag="--data", min_classes=2):
    """A checked ``FileSequences`` (folders) or ``NpzSequences`` (one .npz) for ``path``.

    ``progress(total, desc)`` may return a progress bar (``update()``/``close()``) for the check pass.
    Raises ``DataError`` naming the file for anything that cannot be used (and ``flag``, the option
    that gave ``path``, where the path itself is the problem). A training set needs
    ``min_classes`` classes; a held-out set (``--eval-data``) may hold one.
    """
    path = os.fspath(path)
    problem = layout_problem(path, flag)
    if problem:
        raise DataError(problem)
    if os.path.isfile(path):
        dataset = NpzSequences(path, seq_len, img_size)
    else:
        dataset = open_folder(path, seq_len, img_size, flag)
    dataset.check(skip_bad, progress, cache_bytes, min_classes)
    return dataset


def layout_problem(path, flag="--data"):
    """Why ``path`` cannot be a data set, from its name and its folder listing alone (cheap: nothing
    is read, so commands check it before any work), or None."""
    if not os.path.exists(path):
        return f"{flag} {path}: no such file or folder"
    if os.path.isfile(path):
        return None if has_extension(path, ".npz") else \
            f"{flag} {path}: expected a folder of class folders or an .npz file"
    entries = [n for n in os.listdir(path) if not n.startswith(".")]
    if not any(os.path.isdir(os.path.join(path, n)) or has_extension(n, ".npz") for n in entries):
        return (f"{flag} {path}: no class folders (expected {path}/<class>/<sequence>/<frame>.png "
                f"or {path}/<class>/<sequence>.npy) and no .npz file")
    return None


def memory_bytes(path, seq_len=8, img_size=200, cache_bytes=CACHE_BYTES):
    """Bytes ``open_dataset(path, ...)`` keeps in memory, from names and array headers alone (no
    frame is read): the decoded frames when they fit ``cache_bytes`` (kept after the check pass),
    and each compressed .npz's ``images``, read whole. 0 for a path that is not a data set (its
    error comes from ``open_dataset``)."""
    try:
        if os.path.isfile(path):
            archives, sequences = [path], 0
        else:
            entries = [e for e in os.scandir(path) if not e.name.startswith(".")]
            archives = [e.path for e in entries if not e.is_dir() and has_extension(e.name, ".npz")]
            sequences = sum(_sequences_in(e.path) for e in entries if e.is_dir())
    except OSError:
        return 0
    held = 0
    for archive in archives:
        shape, itemsize, compressed = _npz_header(archive) or ((0,), 0, False)
        sequences += shape[0] if shape else 0
        held += int(np.prod(shape, dtype=np.float64)) * itemsize if compressed else 0
    frames = sequences * seq_len * img_size ** 2 * 4
    return held + (frames if frames <= cache_bytes else 0)


def _sequences_in(folder):
    """How many sequences a class folder holds (sub-folders and .npy files, as ``FileSequences`` counts)."""
    try:
        return sum(1 for e in os.scandir(folder) if not e.name.startswith(".")
                   and (e.is_dir() or has_extension(e.name, ".npy")))
    except OSError:
        return 0


def _npz_header(path, key="images"):
    """``(shape, itemsize, compressed)`` of ``key`` in an .npz, from the array's header, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(key + ".npy")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
        return shape, dtype.itemsize, info.compress_type != zipfile.ZIP_STORED
    except Exception:                  # not an archive, no such member, a bad header: open_dataset says
        return None


def open_folder(root, seq_len=8, img_size=200, flag="--data"):
    """The sequences of a folder (not yet checked): its class folders and its .npz files, together."""
    entries = sorted(n for n in os.listdir(root) if not n.startswith("."))
    folders = [n for n in entries if os.path.isdir(os.path.join(root, n))]
    archives = [n for n in entries if n not in folders and has_extension(n, ".npz")]
    others = len(entries) - len(folders) - len(archives)
    if not folders and not archives:
        raise DataError(layout_problem(root, flag))
    parts = [FileSequences(root, seq_len, img_size)] if folders else []
    parts += [NpzSequences(os.path.join(root, n), seq_len, img_size) for n in archives]
    dataset = parts[0] if len(parts) == 1 else MixedSequences(root, parts)
    notes = list(dataset.notes)
    if archives and folders:
        notes.append(f"read {sum(len(p) for p in parts[1:])} sequence(s) from {short_list(archives)} beside "
                     f"the class folders (classes matched by name)")
    if others:
        notes.append(f"ignored {others} file(s) in {root} that are neither class folders nor .npz files")
    dataset.notes = notes
    return dataset


# ---- data sets ---------------------------------------------------------------------------------
class _Checked(SequenceDataset):
    """Shared by both layouts: the check pass, ``--skip-bad``, the class checks and the cache."""

    notes = ()

    def check(self, skip_bad=False, progress=None, cache_bytes=CACHE_BYTES, min_classes=2):
        """Read every sequence once: bad ones are an error (or, with ``skip_bad``, dropped and counted);
        then every class must still have a sequence, and there must be ``min_classes`` or more. The
        frames read are kept when the whole data set fits in ``cache_bytes``."""
        if len(self) * self.seq_len * self.img_size ** 2 * 4 <= cache_bytes:
            self._cache = np.empty((len(self), self.seq_len, self.img_size, self.img_size), np.float32)
        bad, keep = [], []
        bar = progress(len(self), "checking the data") if progress else None
        for i in range(len(self)):
            try:
                frames = self._read(i)
                if self._cache is not None:
                    self._cache[len(keep)] = frames     # rows follow the kept sequences
                keep.append(i)
            except DataError as exc:
                if not skip_bad:
                    if bar is not None:
                        bar.close()
                    raise DataError(f"{exc} (use --skip-bad to skip bad sequences and count them)") from None
                bad.append(str(exc))
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        notes = list(self.notes)
        if bad:
            self._keep(np.array(keep, dtype=np.int64))
            notes.append(f"skipped {len(bad)} bad sequence(s) (--skip-bad); the first: {bad[0]}")
        if self._cache is not None:
            self._cached = True
        self.notes = notes
        check_classes(self.labels, self.class_names, self.root, min_classes)

    _cache = None
    _cached = False

    def _load(self, i):
        if self._cached:
            return self._cache[i]             # a view: __getitem__ copies it into the batch
        return self._read(i)


def check_classes(labels, class_names, source, min_classes=2):
    """Every class has a sequence and there are at least ``min_classes``; DataError otherwise."""
    counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else np.zeros(len(class_names), int)
    empty = [class_names[c] for c in range(len(class_names)) if counts[c] == 0]
    if empty:
        raise DataError(f"{source}: {len(empty)} class(es) without any sequence: {short_list(empty)} "
                        f"(every class needs at least one; remove the class or add sequences)")
    if len(class_names) < min_classes:
        raise DataError(f"{source}: only one class ({class_names[0] if class_names else 'none'}): "
                        f"classification needs at least two" if class_names else f"{source}: no sequences")


class FileSequences(_Checked):
    """Sequences from ``root/<class>/<sequence>/`` frame folders and ``root/<class>/<sequence>.npy`` files.

    ``paths[i]`` is the folder or file of sequence ``i``; ``labels[i]`` the index of its class in
    ``class_names`` (the sorted class folder names).
    """

    def __init__(self, root, seq_len=8, img_size=200):
        self.root = root
        classes = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and not n.startswith("."))
        if not classes:
            raise DataError(f"--data {root}: no class folders (expected {root}/<class>/<sequence>/<frame>.png "
                            f"or {root}/<class>/<sequence>.npy)")
        paths, labels, ignored = [], [], 0
        for c, name in enumerate(classes):
            folder = os.path.join(root, name)
            entries = sorted((e for e in os.listdir(folder) if not e.startswith(".")), key=natural_key)
            found = 0
            for entry in entries:
                full = os.path.join(folder, entry)
                if os.path.isdir(full) or has_extension(entry, ".npy"):
                    paths.append(full)
                    labels.append(c)
                    found += 1
                else:
                    ignored += 1
            if not found:
                raise DataError(f"{folder}: empty class folder (expected <sequence>/ folders of frames or "
                                f"<sequence>.npy files)")
        super().__init__(labels, classes, seq_len, img_size)
        self.paths = paths
        note = f"ignored {ignored} file(s) that are neither sequence folders nor .npy files"
        self.ignored = [note] if ignored else []
        self.lengths = []
        for p in paths:
            try:
                self.lengths.append(sequence_length(p))
            except DataError:
                self.lengths.append(seq_len)        # the check pass reports it
        self.notes = self.ignored + length_notes(self.lengths, seq_len)

    def _read(self, i):
        return read_sequence(self.paths[i], self.seq_len, self.img_size)

    def _keep(self, rows):
        self.paths = [self.paths[i] for i in rows]
        self.labels = self.labels[rows]

    def describe(self, i):
        return self.paths[i]


def length_notes(lengths, seq_len):
    lengths = np.asarray(lengths)
    notes = []
    short, long = int((lengths < seq_len).sum()), int((lengths > seq_len).sum())
    if short:
        notes.append(f"{short} sequence(s) shorter than --seq-len {seq_len} padded by repeating their last frame")
    if long:
        notes.append(f"{long} sequence(s) longer than --seq-len {seq_len} cut to their first {seq_len} frames")
    return notes


class NpzSequences(_Checked):
    """Sequences from one .npz file: ``images`` (N, frames, H, W[, C]), ``labels`` (N,) ints in
    ``[0, K)``, optional ``class_names`` (K,) strings (else K = max label + 1, names "0".."K-1").

    ``images`` is memory-mapped when the archive stores it uncompressed (``np.savez``); a
    compressed one (``np.savez_compressed``) is read into memory once.
    """

    def __init__(self, path, seq_len=8, img_size=200, labelled=True):
        self.root = path
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path}: cannot read the .npz archive ({type(exc).__name__}: {exc})") from None
        with archive:
            needed = ("images", "labels") if labelled else ("images",)
            missing = [k for k in needed if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found: "
                                f"{', '.join(archive.files) or 'none'}; expected images (N, frames, H, W) "
                                f"and labels (N,))")
            labels = _read_member(archive, "labels", path) if labelled else None
            names = _read_member(archive, "class_names", path) if "class_names" in archive.files else None
        images = _npz_memmap(path, "images")
        if images is None:                     # compressed: no way to map it, read it once
            with np.load(path, allow_pickle=False) as archive:
                images = _read_member(archive, "images", path)
        if images.ndim not in (4, 5):
            raise DataError(f"{path}: images must have shape (N, frames, H, W) or (N, frames, H, W, C), "
                            f"got {images.shape}")
        if 0 in images.shape[2:4]:
            raise DataError(f"{path}: images of shape {images.shape} have no pixels (H and W must be >= 1)")
        if labelled:
            labels = check_labels(labels, len(images), names, path)
            k = len(names) if names is not None else int(labels.max()) + 1    # <= len(labels): checked
            class_names = [str(n) for n in names] if names is not None else [str(c) for c in range(k)]
        else:                                  # sequences to predict: no labels needed
            labels, class_names = np.zeros(len(images), np.int64), ("unlabelled",)
        super().__init__(labels, class_names, seq_len, img_size)
        self._images = images
        self.ignored, self.lengths = [], np.full(len(images), images.shape[1])
        self.notes = length_notes(self.lengths, seq_len)
        self._rows = np.arange(len(images))

    def _read(self, i):
        row = self._rows[i]
        return prepare(self._images[row], self.seq_len, self.img_size, f"{self.root}: images[{row}]")

    def _keep(self, rows):
        self._rows = self._rows[rows]
        self.labels = self.labels[rows]

    def describe(self, i):
        return f"{self.root}: images[{self._rows[i]}]"


class MixedSequences(_Checked):
    """The sequences of several layouts in one folder (its class folders and its .npz files):
    classes are matched by name and numbered in sorted order of their names."""

    def __init__(self, root, parts):
        self.root, self.parts = root, parts
        names = sorted({str(n) for part in parts for n in part.class_names})
        number = {name: c for c, name in enumerate(names)}
        labels = [np.array([number[str(n)] for n in part.class_names], np.int64)[part.labels] for part in parts]
        super().__init__(np.concatenate(labels), names, parts[0].seq_len, parts[0].img_size)
        self._part = np.repeat(np.arange(len(parts)), [len(part) for part in parts])
        self._local = np.concatenate([np.arange(len(part)) for part in parts])
        self.notes = ([note for part in parts for note in part.ignored]
                      + length_notes(np.concatenate([part.lengths for part in parts]), self.seq_len))

    def _read(self, i):
        return self.parts[self._part[i]]._read(int(self._local[i]))

    def _keep(self, rows):
        self._part, self._local, self.labels = self._part[rows], self._local[rows], self.labels[rows]

    def describe(self, i):
        return self.parts[self._part[i]].describe(int(self._local[i]))


def check_labels(labels, n, names, source):
    """Labels as int64 (n,), each in [0, K); DataError otherwise. K = len(names); without names
    K = the largest label + 1, which must not exceed the number of sequences (every class needs
    one), so a stray huge label never makes millions of classes."""
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{source}: labels must have shape ({n},) to match images, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{source}: labels must be integers (class indices), got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if n == 0:
        raise DataError(f"{source}: no sequences (images has length 0)")
    k = len(names) if names is not None else None
    if k is None:      # classes 0..max label: no more classes than sequences
        bad = np.flatnonzero((labels < 0) | (labels >= n))
        expected = (f"class indices 0..{n - 1} (without class_names there are at most as many classes as "
                    f"sequences, {n})")
    else:
        bad = np.flatnonzero((labels < 0) | (labels >= k))
        expected = f"0..{k - 1} ({k} class_names)"
    if len(bad):
        raise DataError(f"{source}: label(s) out of range: {labels[bad[0]]} at position {bad[0]}"
                        + (f" and {len(bad) - 1} more" if len(bad) > 1 else "") + f"; expected {expected}")
    return labels


def _read_member(archive, key, path):
    try:
        return archive[key]
    except Exception as exc:                   # object arrays (pickle), truncated members, ...
        raise DataError(f"{path}: cannot read '{key}' ({type(exc).__name__}: {exc})") from None


def _npz_memmap(path, key):
    """``key`` of an .npz as a read-only memory map when it is stored uncompressed, else None."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(key + ".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)                          # the zip local file header
            if local[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            if dtype.hasobject:
                return None
            return np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape,
                             order="F" if fortran else "C")
    except Exception:                                   # anything odd: fall back to np.load
        return None
