"""Atomic outputs: a temporary name in the destination directory, renamed at the end.

Every file convcli writes goes through here (whole-image writes through
:func:`convcli.imageio.write_output`, band-by-band writes through the sinks of
:mod:`convcli.pipeline.sinks`). The contract:

* the checks come first, before any pixel is computed
  (:func:`check_output_target`): the target is not an input, not a
  directory, does not exist (unless ``force``), and its directory exists;
* the bytes go to a temporary file ``.convcli-*.tmp`` (or directory, for
  zarr) in the target's directory, so that the final rename stays on one file
  system and is atomic;
* :meth:`AtomicFile.commit` flushes, fsyncs, gives the file the mode a plain
  ``open`` would (``0o666 & ~umask``) and moves it into place: without
  ``force`` by a hard link that fails if the target appeared meanwhile (no
  clobbering, even by a race), with ``force`` by ``os.replace``;
* :meth:`AtomicFile.abort` removes the temporary; it is idempotent and never
  raises, so it can run from ``except BaseException`` (Ctrl-C) and from
  ``__exit__``.
* an existing character device or FIFO (``/dev/null``, ``/dev/stdout``, a
  named pipe) is written through (:class:`DeviceFile`, no ``--force``
  needed), never replaced by a file; other special files (block devices,
  sockets) are refused.

An ``OSError`` of the file system becomes one :class:`OutputError` naming the
target (:func:`output_error`): disk full, permission denied, anything else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from typing import BinaryIO

from convcli.errors import OutputError

__all__ = [
    "STDOUT",
    "AtomicDirectory",
    "AtomicFile",
    "DeviceFile",
    "check_output_target",
    "file_mode",
    "is_device",
    "link_no_clobber",
    "open_output_file",
    "output_error",
    "same_file",
    "write_all",
]

STDOUT = "-"
"""The target name meaning standard output."""

_PREFIX, _SUFFIX = ".convcli-", ".tmp"


def same_file(first: str, second: str) -> bool:
    """True if the two paths name one file (``os.path.samefile``, else equal real paths)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def output_error(path: str, error: OSError) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` met while writing ``path``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"{path}: no space left on device; nothing was written")
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{path}: permission denied; the output directory is not writable")
    return OutputError(f"{path}: cannot write ({error.strerror or error})")


def file_mode(*, directory: bool = False) -> int:
    """The mode ``open`` (``0o666``) or ``mkdir`` (``0o777``) would give, minus the umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def write_all(stream: BinaryIO, data: bytes | memoryview) -> None:
    """Write every byte of ``data``; a reader that went away raises ``BrokenPipeError``.

    A buffered write to a pipe whose reader closed after part of a large
    write returns the short count instead of raising; so keep writing until
    done, and treat a write that makes no progress as a broken pipe.
    """
    view = memoryview(data).cast("B")
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking stream with nothing written
            continue
        if written <= 0:
            raise BrokenPipeError(32, "stdout closed by the reader")
        view = view[written:]


def is_device(path: str | os.PathLike) -> bool:
    """True if ``path`` is an existing character device or FIFO (written through, never replaced)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_output_target(target: str | os.PathLike, *, force: bool = False,
                        protect: Iterable[str | os.PathLike] = (), directory_target: bool = False) -> None:
    """Raise :class:`OutputError` if ``target`` may not be written.

    Checks, in order: ``target`` is not one of ``protect`` (the inputs; not
    even with ``force``), is not a directory (unless ``directory_target``:
    a zarr array is a directory, and an existing one is replaced with
    ``force``); a character device or FIFO passes (it is written through,
    except as a zarr directory); any other special file is refused; it does
    not exist (without ``force``), and its directory exists. ``"-"``
    (stdout) always passes.
    """
    path = os.fspath(target)
    if path == STDOUT:
        return
    for protected in protect:
        protected_path = os.fspath(protected)
        if protected_path != STDOUT and same_file(path, protected_path):
            raise OutputError(f"{path}: is the input {protected_path}; refusing to overwrite an input")
    if os.path.isdir(path) and not directory_target:
        raise OutputError(f"{path}: is a directory; give a file name")
    if is_device(path):
        if directory_target:
            raise OutputError(f"{path}: is a device or pipe; a zarr array is a directory")
        return  # written through (DeviceFile): nothing is replaced
    if os.path.lexists(path) and not os.path.isdir(path) and not os.path.isfile(path):
        raise OutputError(f"{path}: is not a regular file; refusing to replace it")
    if os.path.lexists(path) and not force:
        raise OutputError(f"{path} exists; use --force to overwrite")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise OutputError(f"{path}: output directory {directory} {what}")


def link_no_clobber(temporary: str, path: str) -> None:
    """Move ``temporary`` to ``path`` unless ``path`` appeared meanwhile."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise OutputError(f"{path} exists; use --force to overwrite") from None
    except OSError:  # a file system without hard links: check again, then rename
        if os.path.lexists(path):
            raise OutputError(f"{path} exists; use --force to overwrite") from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


class _AtomicOutput:
    """What :class:`AtomicFile` and :class:`AtomicDirectory` share: target, ``force``, once only.

    The constructor makes the temporary next to ``target`` (``_create``, given
    the target's directory), raising its :class:`OSError` as
    :class:`OutputError` naming ``target``.
    """

    def __init__(self, target: str, *, force: bool = False) -> None:
        self.target = target
        self.force = force
        self._done = False
        try:
            self._create(os.path.dirname(os.path.abspath(target)))
        except OSError as error:
            raise output_error(target, error) from None

    def _create(self, directory: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def _check_not_done(self) -> None:
        """Raise :class:`OutputError` if the output was committed or aborted already."""
        if self._done:
            raise OutputError(f"{self.target}: output already finished")

    def _abort_after(self, error: BaseException) -> None:
        """In a failed commit: remove the temporary; raise an :class:`OSError` as :class:`OutputError`.

        Returns for any other error, which the caller re-raises (``raise``).
        """
        self.abort()
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise output_error(self.target, error) from None


class AtomicFile(_AtomicOutput):
    """A temporary file next to ``target``, moved into place by :meth:`commit`.

    ``stream`` is the open binary file (seekable) to write to. Errors of the
    file system, in the constructor or in :meth:`commit`, are raised as
    :class:`OutputError` naming ``target``; on any error in :meth:`commit`
    the temporary is removed. The caller runs the checks
    (:func:`check_output_target`) first.

    Parameters
    ----------
    target : str
        The final path.
    force : bool
        Replace an existing ``target`` (``os.replace``); without it the move
        fails with :class:`OutputError` if ``target`` exists by then.
    """

    def _create(self, directory: str) -> None:
        self.stream: BinaryIO = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by commit/abort
            dir=directory, delete=False, prefix=_PREFIX, suffix=_SUFFIX
        )
        self.name: str = self.stream.name

    def commit(self) -> None:
        """Flush, fsync, set the mode, close and move the file to ``target``."""
        self._check_not_done()
        try:
            self.stream.flush()
            os.fchmod(self.stream.fileno(), file_mode())
            os.fsync(self.stream.fileno())
            self.stream.close()
            if self.force:
                os.replace(self.name, self.target)
            else:
                link_no_clobber(self.name, self.target)
        except BaseException as error:
            self._abort_after(error)
            raise
        self._done = True

    def abort(self) -> None:
        """Close and remove the temporary file; idempotent, never raises."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self.name)


class AtomicDirectory(_AtomicOutput):
    """A temporary directory next to ``target`` (a zarr store), renamed by :meth:`commit`.

    Without ``force`` the rename is refused if ``target`` exists by then
    (checked just before the rename: directories cannot be hard-linked, so a
    target created in the instant between check and rename may be replaced
    if it is an empty directory). With ``force`` an existing ``target``
    (file or directory) is first renamed aside, then removed once the new one
    is in place.
    """

    def _create(self, directory: str) -> None:
        self.name: str = tempfile.mkdtemp(dir=directory, prefix=_PREFIX, suffix=_SUFFIX)

    def commit(self) -> None:
        """Set the directory's mode and rename it to ``target``."""
        self._check_not_done()
        aside = None
        try:
            os.chmod(self.name, file_mode(directory=True))
            if os.path.lexists(self.target):
                if not self.force:
                    raise OutputError(f"{self.target} exists; use --force to overwrite")
                directory = os.path.dirname(os.path.abspath(self.target))
                aside = tempfile.mkdtemp(dir=directory, prefix=_PREFIX, suffix=".old")
                aside_path = os.path.join(aside, "old")
                os.rename(self.target, aside_path)
            os.rename(self.name, self.target)
        except BaseException as error:
            if aside is not None and os.path.lexists(os.path.join(aside, "old")) \
                    and not os.path.lexists(self.target):
                with contextlib.suppress(OSError):
                    os.rename(os.path.join(aside, "old"), self.target)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
            self._abort_after(error)
            raise
        self._done = True
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    def abort(self) -> None:
        """Remove the temporary directory and everything in it; idempotent, never raises.

        A write still under way in another thread (a zarr chunk store) may
        recreate part of it after a first removal, so it is removed again
        until it has stayed gone for 0.2 s (at most 5 s).
        """
        if self._done:
            return
        self._done = True
        deadline = time.monotonic() + 5.0
        gone_since = None
        while True:
            shutil.rmtree(self.name, ignore_errors=True)
            now = time.monotonic()
            if os.path.lexists(self.name):
                gone_since = None
            elif gone_since is None:
                gone_since = now
            if (gone_since is not None and now - gone_since >= 0.2) or now > deadline:
                return
            time.sleep(0.02)


class DeviceFile:
    """An existing character device or FIFO written through: no temporary, no rename, no fsync.

    ``stream`` is the device itself, or with ``buffered`` (formats whose
    writer seeks: a pipe cannot, ``/dev/null`` does not keep positions) an
    anonymous temporary file copied to the device by :meth:`commit`.
    :meth:`abort` closes it (bytes already written to a device cannot be
    taken back; a reader of a pipe sees the stream end early). Errors are
    raised as :class:`OutputError` naming ``target``.
    """

    def __init__(self, target: str, *, buffered: bool = False) -> None:
        self.target = target
        try:
            self._device: BinaryIO = open(target, "wb")  # noqa: SIM115 - closed by commit/abort
        except OSError as error:
            raise output_error(target, error) from None
        self._buffer = tempfile.NamedTemporaryFile(prefix=_PREFIX, suffix=_SUFFIX) if buffered else None  # noqa: SIM115
        self.stream: BinaryIO = self._buffer if self._buffer is not None else self._device

    def commit(self) -> None:
        """Write out the buffer (if any) and close the device."""
        try:
            if self._buffer is not None:
                self._buffer.seek(0)
                shutil.copyfileobj(self._buffer, self._device, 1 << 20)
                self._buffer.close()
                self._buffer = None
            self._device.close()
        except OSError as error:
            self.abort()
            raise output_error(self.target, error) from None

    def abort(self) -> None:
        """Close the device (and drop the buffer); idempotent, never raises."""
        with contextlib.suppress(Exception):
            if self._buffer is not None:
                self._buffer.close()
        self._buffer = None
        with contextlib.suppress(Exception):
            self._device.close()


def open_output_file(target: str, *, force: bool = False, buffered: bool = False) -> AtomicFile | DeviceFile:
    """The writer for a checked file ``target``: :class:`DeviceFile` for a device or FIFO
    (``buffered`` for writers that seek), else :class:`AtomicFile`."""
    if is_device(target):
        return DeviceFile(target, buffered=buffered)
    return AtomicFile(target, force=force)
