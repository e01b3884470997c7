"""The user's own image-caption pairs (``lpm caption train --data JSON``) and the images to caption
(``lpm caption predict FILES``).

The JSON file is a list of ``{"image": path, "caption": text}``; a relative path is read from
``image_root`` (by default the JSON file's folder). An image is a file Pillow reads (.png, .jpg,
...: made grayscale in [0, 1] as ``lpm.data.frames.read_image`` does) or an .npy array (H, W)
(floats as they are, integers scaled by their range). Every pair is read and checked when the
data set is opened, so a bad entry is one error, naming the entry and its file, before training.

    >>> import json, os, tempfile, numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "a.npy"), np.zeros((4, 6), np.float32))
    >>> with open(os.path.join(folder, "pairs.json"), "w") as f:
    ...     json.dump([{"image": "a.npy", "caption": "an empty frame"}], f)
    >>> pairs = ImageTextDataset(os.path.join(folder, "pairs.json"))
    >>> len(pairs), pairs.image_shape, pairs.batch([0])[1]
    (1, (4, 6), ['an empty frame'])
"""

import json
import os

import numpy as np

from lpm.caption.vocab import words_of
from lpm.data.base import DataError, has_extension, require_seed
from lpm.data.frames import IMAGE_EXTENSIONS, frame_files, load_npy, read_image, to_gray

FORMAT = 'a JSON list of {"image": path, "caption": text}'


class ImageTextDataset:
    """Image-caption pairs from ``json_path``, read into memory and checked.

    ``images`` (N, H, W) float32, ``captions`` list[str], ``paths`` (the image files),
    ``image_shape`` (H, W): ``image_size`` (an int for square images, or (H, W)) or else the first
    image's. ``len()`` and ``batch(indices) -> (images, captions)`` as ``lpm.caption.tasks.CaptionData``.
    Raises ``DataError`` naming the entry and its file for anything that cannot be used.
    """

    def __init__(self, json_path, image_root=None, image_size=None):
        json_path = os.fspath(json_path)
        entries = read_entries(json_path)
        root = os.path.dirname(json_path) if image_root is None else os.fspath(image_root)
        if root and not os.path.isdir(root):
            raise DataError(f"--image-root {root}: no such folder")
        shape = _expected_shape(image_size)
        source = f"image_size={shape}" if shape is not None else "the size of entry 0's image"
        images, self.paths, self.captions = [], [], []
        for i, (image, caption) in enumerate(entries):
            path = image if os.path.isabs(image) else os.path.join(root, image)
            where = f"{json_path} entry {i} ({path})"
            try:
                words_of(caption, where)
            except ValueError as exc:
                raise DataError(str(exc)) from None
            pixels = read_one_image(path, where)
            if shape is None:
                shape = pixels.shape
            elif pixels.shape != shape:
                raise DataError(f"{where}: image of shape {pixels.shape}; expected {shape} ({source})")
            images.append(pixels)
            self.paths.append(path)
            self.captions.append(caption)
        self.images = np.stack(images)
        self.image_shape = tuple(shape)
        self.name = f"{len(entries)} image-caption pairs of {json_path}"

    def __len__(self):
        return len(self.captions)

    def batch(self, indices):
        """``(images (B, H, W) float32, captions list[str])`` of the rows ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        return self.images[indices], [self.captions[i] for i in indices.tolist()]

    def subset(self, indices, name=None):
        """The pairs at ``indices`` as a data set of their own (the images are copied)."""
        part = object.__new__(type(self))
        indices = np.asarray(indices, dtype=np.int64)
        part.images = self.images[indices]
        part.paths = [self.paths[i] for i in indices.tolist()]
        part.captions = [self.captions[i] for i in indices.tolist()]
        part.image_shape, part.name = self.image_shape, name or f"{len(indices)} of {self.name}"
        return part


def held_out_split(pairs, fraction=0.1, seed=0):
    """``(train, held_out)``: a seeded random ``fraction`` of ``pairs`` held out (at least one pair,
    and at least one left to train on); ``DataError`` for fewer than two pairs."""
    require_seed("held_out_split", seed)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held_out_split: fraction must be in (0, 1), got {fraction}")
    if len(pairs) < 2:
        raise DataError(f"{pairs.name}: at least 2 pairs are needed (one to train on, one held out), got {len(pairs)}")
    order = np.random.default_rng([seed, 18]).permutation(len(pairs))
    n_held = min(max(int(round(len(pairs) * fraction)), 1), len(pairs) - 1)
    return (pairs.subset(np.sort(order[n_held:]), f"{pairs.name}, training part"),
            pairs.subset(np.sort(order[:n_held]), f"{pairs.name}, held-out part"))


def held_out_file(json_path, image_root, image_shape, train_paths=()):
    """The pairs of ``--eval-data json_path`` (images under ``image_root``), every one held out:
    an ``ImageTextDataset`` whose images must have the training images' ``image_shape`` and must not
    be any of ``train_paths`` (the training images' files). ``DataError`` naming ``--eval-data``."""
    json_path = os.fspath(json_path)
    if not os.path.isfile(json_path):
        raise DataError(f"--eval-data {json_path}: {'a folder' if os.path.isdir(json_path) else 'no such file'} "
                        f"(expected {FORMAT})")
    if image_root is not None and not os.path.isdir(image_root):
        raise DataError(f"--eval-image-root {image_root}: no such folder")
    try:
        pairs = ImageTextDataset(json_path, image_root=image_root, image_size=image_shape)
    except DataError as exc:        # read_entries' messages say --data: this file is --eval-data
        text = str(exc).replace(f"--data {json_path}:", f"--eval-data {json_path}:", 1)
        raise DataError(text if text.startswith("--eval-data") else f"--eval-data {json_path}: {text}") from None
    training = {os.path.realpath(p) for p in train_paths}
    shared = [p for p in pairs.paths if os.path.realpath(p) in training]
    if shared:
        raise DataError(f"--eval-data {json_path}: {len(shared)} of its images are training images too (e.g. "
                        f"{shared[0]}): the held-out pairs must not be training ones")
    pairs.name = f"{len(pairs)} held-out pairs of {json_path}"
    return pairs


def read_entries(json_path):
    """``[(image, caption), ...]`` of the JSON file; ``DataError`` for a file that is not ``FORMAT``."""
    if not os.path.isfile(json_path):
        raise DataError(f"--data {json_path}: no such file (expected {FORMAT})")
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"--data {json_path}: cannot read the JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, list) or not data:
        got = "an empty list" if data == [] else type(data).__name__
        raise DataError(f"--data {json_path}: expected {FORMAT}, got {got}")
    entries = []
    for i, entry in enumerate(data):
        missing = [k for k in ("image", "caption") if not isinstance(entry, dict) or k not in entry]
        if missing:
            got = f"missing key(s) {', '.join(map(repr, missing))}" if isinstance(entry, dict) else \
                f"a {type(entry).__name__}"
            raise DataError(f"{json_path} entry {i}: {got}; each entry is {{\"image\": path, \"caption\": text}}")
        if not isinstance(entry["image"], str) or not entry["image"]:
            raise DataError(f"{json_path} entry {i}: \"image\" must be a file path, got {entry['image']!r}")
        entries.append((entry["image"], entry["caption"]))
    return entries


def read_one_image(path, where):
    """One image file (Pillow) or .npy array (H, W) as (H, W) float32 in [0, 1]; ``DataError`` naming
    ``where`` if it is missing, unreadable, not 2-D or not finite."""
    if not os.path.isfile(path):
        raise DataError(f"{where}: no such image file")
    array = read_array(path, where)
    if array.ndim != 2:
        raise DataError(f"{where}: an image must be 2-D (H, W), got an array of shape {array.shape}")
    return _checked(array, where)


def require_float_images(images, where):
    """TypeError naming ``where`` for integer pixels, which a float32 cast would read as 0-255 values
    (the first image's dtype decides: ``images`` may be a long array or a list)."""
    kind = np.asarray(images[:1]).dtype
    if kind.kind != "f":
        raise TypeError(f"{where}: expected floating-point images (pixels in [0, 1]), got {kind}; scale "
                        "integer images first, e.g. images.astype(np.float32) / 255")


def _check_paths(paths, where):
    if isinstance(paths, (str, bytes, os.PathLike)):      # its characters would each be read as a path
        raise TypeError(f"{where}: paths must be a list of paths, got one {type(paths).__name__}: {paths!r}")


def read_images(paths, image_shape):
    """The images of ``paths`` to caption: ``(images (N, H, W) float32, sources [(file, index)])``.

    Each file is an image Pillow reads, an .npy image (H, W) or an .npy batch (N, H, W); ``index``
    is the image's row in its file (0 for a single image). A file of another shape is a
    ``DataError`` naming the file, its shape and the expected one."""
    _check_paths(paths, "read_images")
    image_shape = tuple(image_shape)
    images, sources = [], []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            raise DataError(f"{path}: a folder (a frame sequence); this model (ViT encoder) captions single images "
                            f"{image_shape}: give image files or .npy arrays")
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file")
        array = read_array(path, path)
        if array.shape == image_shape:
            array = array[None]
        elif array.ndim != 3 or array.shape[1:] != image_shape:
            sequences = " (frame sequences: this model's encoder is ViT, not LPM)" if array.ndim == 4 else ""
            raise DataError(f"{path}: shape {array.shape}{sequences}; expected an image {image_shape} "
                            f"or a batch (N, {image_shape[0]}, {image_shape[1]})")
        images.append(_checked(array, path))
        sources += [(path, k) for k in range(len(array))]
    if not images:
        raise DataError("no image files given")
    return np.concatenate(images), sources


def read_sequences(paths, sequence_shape):
    """The frame sequences to caption with an LPM-encoder model: ``(sequences (N, T, H, W) float32,
    sources [(file, index)])``.

    Each path is an .npy sequence (T, H, W), an .npy batch (N, T, H, W) or a folder of frame images
    (one sequence, in name order as ``lpm train --data`` reads a sequence folder). ``(T, H, W)`` must
    be ``sequence_shape``, the model's frame count and size: no padding, cutting or resizing. Any
    other shape, or a single image, is a ``DataError`` naming the file, its shape and the expected one."""
    _check_paths(paths, "read_sequences")
    shape = tuple(int(s) for s in sequence_shape)
    expected = (f"this model (LPM encoder) captions frame sequences {shape} (T frames of H x W): an .npy {shape}, "
                f"an .npy batch (N, {', '.join(map(str, shape))}) or a folder of {shape[0]} frame images")
    sequences, sources = [], []
    for path in map(os.fspath, paths):
        array = _sequence_folder(path, shape, expected) if os.path.isdir(path) else _sequence_array(path, expected)
        if array.shape[-3:] != shape or array.ndim not in (3, 4):
            raise DataError(f"{path}: shape {array.shape}; {expected}")
        array = to_gray(array, path) if array.ndim == 3 else to_gray(array.reshape(-1, *shape[1:]), path).reshape(
            array.shape)
        sequences.append(_checked(array if array.ndim == 4 else array[None], path))
        sources += [(path, k) for k in range(len(sequences[-1]))]
    if not sequences:
        raise DataError("no frame sequences given")
    return np.concatenate(sequences), sources


def _sequence_array(path, expected):
    """An .npy file's array as stored (memory-mapped: its shape is checked before its pixels are read)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file or folder")
    if not has_extension(path, ".npy"):
        what = "a single image" if has_extension(path, IMAGE_EXTENSIONS) else "neither an .npy array nor a folder"
        raise DataError(f"{path}: {what}; {expected}")
    array = _named(load_npy, path, path)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numeric pixels, got dtype {array.dtype}")
    if array.ndim == 2:
        raise DataError(f"{path}: shape {array.shape}, a single image; {expected}")
    return array


def _sequence_folder(folder, shape, expected):
    """The frames (T, H, W) of a folder of frame images, their count and sizes checked."""
    files = frame_files(folder)
    if len(files) != shape[0]:
        raise DataError(f"{folder}: a folder of {len(files)} frame image(s) ({', '.join(IMAGE_EXTENSIONS)}); "
                        f"{expected}")
    frames = []
    for path in files:
        frame = read_image(path)
        if frame.shape != shape[1:]:
            raise DataError(f"{path}: a frame of shape {frame.shape} in {folder}; {expected}")
        frames.append(frame)
    return np.stack(frames)


def read_array(path, where):
    """An .npy array (H, W) or (N, H, W) as float32 (integers scaled by their range), or an image
    file via Pillow (H, W); other .npy shapes come back as they are, for the caller to refuse."""
    if has_extension(path, ".npy"):
        array = _named(load_npy, path, where)
        if array.dtype.kind not in "biuf":
            raise DataError(f"{where}: expected numeric pixels, got dtype {array.dtype}")
        if array.ndim == 2:
            return to_gray(array[None], where)[0]
        return to_gray(array, where) if array.ndim == 3 else np.asarray(array, np.float32)
    if has_extension(path, IMAGE_EXTENSIONS):
        return _named(read_image, path, where)
    raise DataError(f"{where}: expected an image file ({', '.join(IMAGE_EXTENSIONS)}) or an .npy array")


def _named(read, path, where):
    """``read(path)``, its DataError (which names the file) naming ``where`` (the entry) instead."""
    try:
        return read(path)
    except DataError as exc:
        raise DataError(str(exc) if where == path else f"{where}: {str(exc).split(': ', 1)[-1]}") from None


def _checked(array, where):
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise DataError(f"{where}: non-finite pixel values (NaN or infinity)")
    return array


def _expected_shape(image_size):
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(f"image_size must be a positive int or (H, W), got {image_size!r}")
    return tuple(int(s) for s in size)
