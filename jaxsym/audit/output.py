"""The audit's output directory: checked before the run, replaced atomically.

Rules (a user's file is never removed):

* ``--out`` must not be empty, ``/``, the home directory, the working
  directory or any ancestor of it (after resolving symbolic links), nor a
  symbolic link itself.
* An existing non-empty ``--out`` is replaced only with ``--force``, and only
  if a previous audit wrote it: it holds the marker file :data:`MARKER` (which
  lists the files that audit wrote) or a ``report.json`` of our schema, and
  nothing else than the files the audit writes. Otherwise it is refused.
* The parent must be a directory in which we can create a directory (probed
  by creating and removing one, since permission bits say little to root).

:func:`check_out` runs before any work; :func:`write_atomically` repeats it,
fills a temporary sibling directory and swaps it in by renames. Only files
listed as ours are ever deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import NamedTuple

from jaxsym.audit.inputs import AuditError
from jaxsym.audit.plots import PLOTS

__all__ = ["MARKER", "Target", "check_out", "write_atomically"]

MARKER = ".jaxsym-audit"
REPORT = "report.json"
_LEGACY_FILES = frozenset({REPORT, *PLOTS})  # what an audit wrote before the marker existed


class Target(NamedTuple):
    """A checked ``--out``.

    Attributes:
        path: the absolute path.
        replace: whether an earlier audit's directory is there to be replaced.
    """

    path: str
    replace: bool


class _State:
    """Temporary directories being filled, and the commit flag (for the SIGINT handler)."""

    pending: set[str] = set()  # noqa: RUF012 - process-wide on purpose
    created: list[str] = []  # noqa: RUF012 - parents we created, deepest first
    committing = False
    interrupted = False


def discard_pending() -> None:
    """Remove the temporary directories this process is filling (ours only)."""
    for path in list(_State.pending):
        shutil.rmtree(path, ignore_errors=True)
        _State.pending.discard(path)
    for path in _State.created:  # empty parents we made for --out
        with contextlib.suppress(OSError):
            os.rmdir(path)
    _State.created.clear()


def committing() -> bool:
    """True while the renames that publish a report run (do not interrupt them)."""
    return _State.committing


def note_interrupt() -> None:
    """Record a Ctrl-C that arrived while committing; :func:`write_atomically` reports it."""
    _State.interrupted = True


def _writable_name(name: str) -> bool:
    """Names an audit may write: the report and PNG plots, nothing else (never a user's file)."""
    return os.sep not in name and (name == REPORT or (name.endswith(".png") and name[:1] != "."))


def _entries(path: str, flag: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as error:
        raise AuditError(f"{flag}: cannot list {path!r} ({error.strerror}).") from None


def _audit_files(directory: str) -> frozenset[str] | None:
    """The files an earlier audit wrote into ``directory``, or ``None`` if it is not ours."""
    marker = os.path.join(directory, MARKER)
    if os.path.isfile(marker) and not os.path.islink(marker):
        try:
            with open(marker, encoding="utf-8") as handle:
                listed = json.load(handle)["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        names = {name for name in listed if isinstance(name, str) and _writable_name(name)}
        return frozenset({MARKER, *names})
    report = os.path.join(directory, REPORT)
    if os.path.isfile(report) and not os.path.islink(report):
        try:
            with open(report, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError):
            return None
        if isinstance(document, dict) and {"schema_version", "jaxsym_version"} <= set(document):
            return _LEGACY_FILES
    return None


def _replaceable(path: str, flag: str) -> None:
    """Refuse unless ``path`` is an earlier audit's directory holding only its own files."""
    ours = _audit_files(path)
    if ours is None:
        raise AuditError(
            f"{flag}: {path!r} is a directory that jaxsym audit did not write (no {MARKER} "
            f"marker or report.json of ours); --force replaces only an earlier audit's output."
        )
    entries = _entries(path, flag)
    foreign = sorted(
        name
        for name in entries
        if name not in ours
        or os.path.islink(os.path.join(path, name))
        or not os.path.isfile(os.path.join(path, name))
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise AuditError(
            f"{flag}: {path!r} holds {len(foreign)} file(s) the audit did not write ({shown}); "
            "--force replaces only an earlier audit's output. Move them or choose another --out."
        )


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _check_parent(parent: str, flag: str) -> None:
    """The parent must be (or be creatable inside) a directory where we can create one."""
    existing = _nearest_existing(parent)
    if not os.path.isdir(existing):
        raise AuditError(f"{flag}: {existing!r} is not a directory, so nothing can go inside it.")
    try:
        probe = tempfile.mkdtemp(prefix=".jaxsym-probe-", dir=existing)
    except OSError as error:
        raise AuditError(
            f"{flag}: cannot create a directory in {existing!r} ({error.strerror})."
        ) from None
    os.rmdir(probe)


def check_out(out: str, *, force: bool, flag: str = "--out") -> Target:
    """Check ``--out`` before any work (see the module docstring for the rules).

    Raises:
        AuditError: naming the path and the reason.
    """
    if not out or not out.strip():
        raise AuditError(f"{flag}: empty path; give a new directory, e.g. --out jaxsym-audit.")
    if "\0" in out:
        raise AuditError(f"{flag} {out!r}: a path cannot hold a NUL character.")
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:  # the working directory was removed
        raise AuditError("the working directory no longer exists; cd elsewhere.") from None
    path = os.path.abspath(os.path.expanduser(out))
    resolved = os.path.realpath(path)
    home = os.path.realpath(os.path.expanduser("~"))
    protected = {
        os.path.realpath(os.sep): "the root directory",
        home: "your home directory",
        cwd: "the working directory",
    }
    if resolved in protected:
        raise AuditError(f"{flag} {out!r} is {protected[resolved]}; choose a new directory.")
    if cwd.startswith(resolved.rstrip(os.sep) + os.sep):
        raise AuditError(f"{flag} {out!r} contains the working directory; choose a new directory.")
    if home.startswith(resolved.rstrip(os.sep) + os.sep):
        raise AuditError(f"{flag} {out!r} contains your home directory; choose a new directory.")
    if os.path.islink(path):
        raise AuditError(f"{flag} {out!r} is a symbolic link; give a real directory path.")
    _check_parent(os.path.dirname(path), flag)
    if not os.path.lexists(path):
        return Target(path, replace=False)
    if not os.path.isdir(path):
        raise AuditError(f"{flag} {out!r} exists and is not a directory.")
    if not _entries(path, flag):
        return Target(path, replace=True)
    if not force:
        raise AuditError(
            f"{flag} {out!r} exists; pass --force to replace an earlier audit's output, "
            "or choose another --out."
        )
    _replaceable(path, flag)
    return Target(path, replace=True)


def _remove_ours(directory: str, names: frozenset[str]) -> None:
    """Delete ``names`` from ``directory``, then the directory if that emptied it."""
    for name in names:
        target = os.path.join(directory, name)
        if os.path.isfile(target) and not os.path.islink(target):
            os.remove(target)
    with contextlib.suppress(OSError):  # something else appeared: leave it
        os.rmdir(directory)


def write_atomically(
    out: str, write: Callable[[str], list[str]], *, force: bool, flag: str = "--out"
) -> bool:
    """Publish a directory of files so that ``out`` holds the old set or the new one.

    Checks ``out`` again (:func:`check_out`), has ``write(tmp)`` fill a
    temporary sibling directory and return the names it wrote, adds the
    :data:`MARKER` listing them, and swaps the directory in by renames. An
    earlier audit's directory is removed last, file by file (only its listed
    files). The temporary directory is removed if anything fails.

    Returns:
        True if a Ctrl-C arrived during the final renames (the new output is
        complete; the caller should exit with status 130).

    Raises:
        AuditError: if ``out`` may not be written (see :func:`check_out`).
    """
    target = check_out(out, force=force, flag=flag)
    _State.interrupted = False
    parent, name = os.path.split(target.path)
    missing = parent
    while not os.path.lexists(missing):
        _State.created.append(missing)
        missing = os.path.dirname(missing)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    _State.pending.add(tmp)
    published = False
    try:
        written = sorted(set(write(tmp)))
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as handle:
            json.dump({"files": written}, handle)
        os.chmod(tmp, 0o755)
        old_files = _audit_files(target.path) if target.replace else None
        _State.committing = True
        if not target.replace:
            os.rename(tmp, target.path)  # fails if something appeared meanwhile: nothing lost
            _State.pending.discard(tmp)
        else:
            old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.rmdir(old)
            os.rename(target.path, old)
            try:
                os.rename(tmp, target.path)
            except BaseException:
                os.rename(old, target.path)
                raise
            _State.pending.discard(tmp)
            _remove_ours(old, old_files or frozenset())
        published = True
        return _State.interrupted
    finally:
        _State.committing = False
        if published:
            _State.created.clear()
        else:
            discard_pending()
