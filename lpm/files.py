"""The user's own image sequences, in the layouts people have (``--data PATH``).

- ``PATH/<class>/<sequence>/<frame>.png`` (or .jpg, .jpeg, .bmp, .tif, .tiff, .webp, .gif):
  one folder of frames per sequence, frames in name order with numbers compared as numbers
  (``frame2`` before ``frame10``);
- ``PATH/<class>/<sequence>.npy``: one array per sequence, (frames, H, W) or (frames, H, W, C);
- ``PATH.npz``, or ``.npz`` files in the folder PATH: ``images`` (N, frames, H, W) and ``labels``
  (N,) integers, optionally ``class_names`` (K,) strings (else the classes are named "0".."K-1").

The layouts may be mixed in one folder: a class is a folder name or an .npz class name, and the
classes of a folder are numbered in sorted order of their names; an .npz's sequences join the
class folder of the same name. Extensions are compared in any case (``GOOD.NPZ``). At most
``MAX_CLASSES`` classes.

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
import re
import zipfile

import numpy as np

from lpm.datasets import MAX_CLASSES, DataError, SequenceDataset, has_extension, short_list

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
CACHE_BYTES = 1 << 30
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)    # ITU-R 601-2, what Pillow's convert("L") uses


def open_dataset(path, seq_len=8, img_size=200, skip_bad=False, cache_bytes=CACHE_BYTES, progress=None):
    """A checked ``FileSequences`` (folders) or ``NpzSequences`` (one .npz) for ``path``.

    ``progress(total, desc)`` may return a progress bar (``update()``/``close()``) for the check pass.
    Raises ``DataError`` naming the file for anything that cannot be used.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"--data {path}: no such file or folder")
    if os.path.isfile(path):
        if not has_extension(path, ".npz"):
            raise DataError(f"--data {path}: expected a folder of class folders or an .npz file")
        dataset = NpzSequences(path, seq_len, img_size)
    else:
        dataset = open_folder(path, seq_len, img_size)
    dataset.check(skip_bad, progress, cache_bytes)
    return dataset


def open_folder(root, seq_len=8, img_size=200):
    """The sequences of a folder (not yet checked): its class folders and its .npz files, together."""
    entries = sorted(n for n in os.listdir(root) if not n.startswith("."))
    folders = [n for n in entries if os.path.isdir(os.path.join(root, n))]
    archives = [n for n in entries if n not in folders and has_extension(n, ".npz")]
    others = len(entries) - len(folders) - len(archives)
    if not folders and not archives:
        raise DataError(f"--data {root}: no class folders (expected {root}/<class>/<sequence>/<frame>.png "
                        f"or {root}/<class>/<sequence>.npy) and no .npz file")
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


# ---- one sequence ------------------------------------------------------------------------------
def natural_key(name):
    """Sort key comparing digit runs as numbers: ``frame2`` < ``frame10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def frame_files(folder):
    """The image files of a sequence folder, in name order."""
    names = [n for n in os.listdir(folder) if has_extension(n, IMAGE_EXTENSIONS) and not n.startswith(".")]
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def read_image(path):
    """One image file as a 2-D float32 grayscale array in [0, 1]. DataError if unreadable."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading image files needs Pillow: pip install 'lpm[data]' or pip install pillow") from None
    try:
        with Image.open(path) as im:
            im.load()                       # decode now: a truncated or corrupt file fails here
            if im.mode.startswith("I;16"):
                return np.asarray(im, dtype=np.float32) / np.float32(65535)
            if im.mode == "I":              # 32-bit integer images hold 16-bit data in practice
                return np.asarray(im, dtype=np.float32) / np.float32(65535)
            if im.mode == "F":
                return np.asarray(im, dtype=np.float32)
            return np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255)
    except Exception as exc:                # Pillow raises many types for bad files; all mean "unreadable"
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def to_gray(frames, source):
    """(S, H, W) or (S, H, W, C) numbers -> (S, H, W) float32 in [0, 1] (integers scaled by their range)."""
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] in (1, 3, 4):
        frames = frames[..., 0] if frames.shape[-1] == 1 else frames[..., :3]
    elif frames.ndim != 3:
        raise DataError(f"{source}: expected frames of shape (frames, H, W) or (frames, H, W, channels), "
                        f"got shape {frames.shape}")
    kind = frames.dtype.kind
    if kind == "b":
        out = frames.astype(np.float32)
    elif kind in "iu":
        out = frames.astype(np.float32) / np.float32(np.iinfo(frames.dtype).max)
    elif kind == "f":
        out = frames.astype(np.float32)
    else:
        raise DataError(f"{source}: expected numeric pixels, got dtype {frames.dtype}")
    if out.ndim == 4:
        out = out @ _LUMA
    return out


def resize(frame, img_size):
    """A 2-D float32 frame resized to (img_size, img_size) with Pillow (bilinear)."""
    if frame.shape == (img_size, img_size):
        return frame
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"resizing {frame.shape[1]}x{frame.shape[0]} frames to {img_size}x{img_size} needs Pillow: "
                        f"pip install 'lpm[data]' or pip install pillow") from None

    return np.asarray(Image.fromarray(np.ascontiguousarray(frame, dtype=np.float32))
                      .resize((img_size, img_size), Image.Resampling.BILINEAR), dtype=np.float32)


def fit_length(frames, seq_len):
    """Cut to the first ``seq_len`` frames, or pad by repeating the last frame."""
    if len(frames) >= seq_len:
        return frames[:seq_len]
    return np.concatenate([frames, np.repeat(frames[-1:], seq_len - len(frames), axis=0)])


def prepare(frames, seq_len, img_size, source):
    """Raw frames (S, H, W[, C]) -> (seq_len, img_size, img_size) float32; DataError if empty or non-finite."""
    if len(frames) == 0:
        raise DataError(f"{source}: the sequence has no frames")
    if frames.ndim >= 3 and 0 in frames.shape[1:3]:
        raise DataError(f"{source}: frames of {frames.shape[2]}x{frames.shape[1]} pixels (shape {frames.shape}): "
                        f"an image needs at least one pixel")
    frames = fit_length(frames, seq_len)       # before converting: only the kept frames are read
    out = np.stack([resize(f, img_size) for f in to_gray(frames, source)])
    if not np.isfinite(out).all():
        raise DataError(f"{source}: non-finite pixel values (NaN or infinity)")
    return out


def load_npy(path):
    """A (frames, H, W[, C]) array from an .npy file, memory-mapped; DataError if unreadable."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:                   # truncated, not an .npy, object arrays, ...
        raise DataError(f"{path}: cannot read the array ({type(exc).__name__}: {exc})") from None


def read_sequence(path, seq_len, img_size):
    """One sequence from a frames folder or an .npy file: (seq_len, img_size, img_size) float32."""
    if os.path.isdir(path):
        files = frame_files(path)
        if not files:
            raise DataError(f"{path}: no image files (expected {', '.join(IMAGE_EXTENSIONS)})")
        files = files[:seq_len]                   # frames past seq_len would be cut anyway
        return prepare(np.stack(_same_size([read_image(f) for f in files], files)), seq_len, img_size, path)
    if has_extension(path, ".npy"):
        return prepare(load_npy(path), seq_len, img_size, path)
    raise DataError(f"{path}: expected a folder of frames or an .npy file")


def sequence_length(path):
    """The number of frames in a sequence, from the folder listing or the .npy header (cheap)."""
    return len(frame_files(path)) if os.path.isdir(path) else len(load_npy(path))


def _same_size(frames, files):
    for frame, name in zip(frames, files):
        if frame.shape != frames[0].shape:
            raise DataError(f"{name}: a frame of {_size(frame.shape)} pixels in a sequence whose first frame "
                            f"({files[0]}) has {_size(frames[0].shape)}")
    return frames


def _size(shape):
    return f"{shape[1]}x{shape[0]}"


# ---- data sets ---------------------------------------------------------------------------------
class _Checked(SequenceDataset):
    """Shared by both layouts: the check pass, ``--skip-bad``, the class checks and the cache."""

    notes = ()

    def check(self, skip_bad=False, progress=None, cache_bytes=CACHE_BYTES):
        """Read every sequence once: bad ones are an error (or, with ``skip_bad``, dropped and counted);
        then every class must still have a sequence, and there must be two classes or more. The
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
        check_classes(self.labels, self.class_names, self.root)

    _cache = None
    _cached = False

    def _load(self, i):
        if self._cached:
            return self._cache[i]             # a view: __getitem__ copies it into the batch
        return self._read(i)


def check_classes(labels, class_names, source):
    """Every class has a sequence and there are at least two classes; DataError otherwise."""
    counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else np.zeros(len(class_names), int)
    empty = [class_names[c] for c in range(len(class_names)) if counts[c] == 0]
    if empty:
        raise DataError(f"{source}: {len(empty)} class(es) without any sequence: {short_list(empty)} "
                        f"(every class needs at least one; remove the class or add sequences)")
    if len(class_names) > MAX_CLASSES:
        raise DataError(f"{source}: {len(class_names)} classes; at most {MAX_CLASSES} are supported")
    if len(class_names) < 2:
        raise DataError(f"{source}: only one class ({class_names[0] if class_names else 'none'}): "
                        f"classification needs at least two")


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
    """Labels as int64 (n,), each in [0, K); DataError otherwise. K = len(names) (at most
    ``MAX_CLASSES``); without names K = the largest label + 1, which must not exceed the number of
    sequences (every class needs one), so a stray huge label never makes millions of classes."""
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{source}: labels must have shape ({n},) to match images, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{source}: labels must be integers (class indices), got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if n == 0:
        raise DataError(f"{source}: no sequences (images has length 0)")
    k = len(names) if names is not None else None
    if k is not None and k > MAX_CLASSES:
        raise DataError(f"{source}: {k} class_names; at most {MAX_CLASSES} classes are supported")
    if k is None:      # classes 0..max label: no more classes than sequences (nor than MAX_CLASSES)
        bound = min(n, MAX_CLASSES)
        bad = np.flatnonzero((labels < 0) | (labels >= bound))
        expected = (f"class indices 0..{bound - 1} (without class_names there are at most as many classes as "
                    f"sequences, {n}" + (f", and at most {MAX_CLASSES}" if n > MAX_CLASSES else "") + ")")
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
