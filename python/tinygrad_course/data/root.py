"""Where the data sets live, the shared error type, and checksum-verified downloads.

A loader looks for its files under a data root: the `root` argument, else the environment
variable TINYGRAD_COURSE_DATA, else a per-user cache folder ($XDG_CACHE_HOME/tinygrad_course,
by default ~/.cache/tinygrad_course). Under a root each data set has its own folder
(mnist/, fashion-mnist/, cifar-10/, iris/, horizon-sky/), the layout of the course's offline
copies, so `TINYGRAD_COURSE_DATA=path/to/datasets` works directly.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["DatasetError", "ENV_VAR", "data_root", "default_cache_dir", "download_url", "file_digest",
           "missing_files_error"]

ENV_VAR = "TINYGRAD_COURSE_DATA"


class DatasetError(ValueError):
    """A data file is corrupt, truncated or does not match its companions (the message names the file)."""


def default_cache_dir() -> Path:
    """The per-user cache folder: $XDG_CACHE_HOME/tinygrad_course, else ~/.cache/tinygrad_course."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_course"


def data_root(root=None) -> Path:
    """Resolve the data root: `root` if given, else $TINYGRAD_COURSE_DATA, else default_cache_dir()."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_cache_dir()


def missing_files_error(dataset: str, folder: Path, missing, downloadable: bool = True) -> FileNotFoundError:
    """A FileNotFoundError naming what is missing, the folder searched, and how to fix it."""
    how = f"set {ENV_VAR} to a folder that holds {folder.name}/ (or pass root=...)"
    if downloadable:
        how += ", or pass download=True to fetch it from the canonical source"
    names = ", ".join(str(m) for m in missing)
    return FileNotFoundError(f"{dataset}: {names} not found in {folder}; {how}")


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_url(urls, dest, md5: str | None = None, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download the first reachable of `urls` (a URL or a list of mirrors) to `dest`, checking its checksum.

    The bytes go to a temporary file next to `dest` that is renamed only once the md5/sha256
    matches; on a mismatch (or any other failure) the temporary file is deleted and an error raised,
    so `dest` never holds a partial or wrong file. Network errors move on to the next mirror.
    """
    if md5 is None and sha256 is None:
        raise ValueError("download_url needs an md5 or a sha256 to verify the download")
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        try:
            hashes = {name: hashlib.new(name) for name, want in (("md5", md5), ("sha256", sha256)) if want}
            with os.fdopen(fd, "wb") as out:
                try:
                    response = urllib.request.urlopen(url, timeout=timeout)
                except OSError as e:  # URLError and socket errors: try the next mirror
                    errors.append(f"{url}: {e}")
                    continue
                with response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        for h in hashes.values():
                            h.update(chunk)
            for name, want in (("md5", md5), ("sha256", sha256)):
                if want and hashes[name].hexdigest() != want.lower():
                    raise DatasetError(f"checksum mismatch for {url} (saving {dest}): {name} "
                                       f"{hashes[name].hexdigest()}, expected {want}; the download was deleted")
            os.replace(tmp, dest)
            return dest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError(f"could not download {dest.name}: " + "; ".join(errors))
