"""One sequence of the user's own files (``--data PATH``, see ``lpm.data.files``): its frames
read from image files or an .npy array, made grayscale in [0, 1], resized to ``img_size`` and
padded or cut to ``seq_len``.

    >>> fit_length(np.zeros((2, 4, 4), np.float32), 3).shape
    (3, 4, 4)
"""

import os
import re

import numpy as np

from lpm.data.base import DataError, has_extension

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)    # ITU-R 601-2, what Pillow's convert("L") uses


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
    _check_shape(frames, source)
    if frames.ndim == 4:
        frames = frames[..., 0] if frames.shape[-1] == 1 else frames[..., :3]
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


def _check_shape(frames, source):
    if not (frames.ndim == 3 or frames.ndim == 4 and frames.shape[-1] in (1, 3, 4)):
        raise DataError(f"{source}: expected frames of shape (frames, H, W) or (frames, H, W, channels), "
                        f"got shape {frames.shape}")


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
    _check_shape(frames, source)               # as the file holds it, before padding or cutting
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
    if os.path.isdir(path):
        return len(frame_files(path))
    frames = load_npy(path)
    return len(frames) if frames.ndim else 1   # a 0-d array: the check pass names its shape


def _same_size(frames, files):
    for frame, name in zip(frames, files):
        if frame.shape != frames[0].shape:
            raise DataError(f"{name}: a frame of {_size(frame.shape)} pixels in a sequence whose first frame "
                            f"({files[0]}) has {_size(frames[0].shape)}")
    return frames


def _size(shape):
    return f"{shape[1]}x{shape[0]}"
