"""A private FiftyOne database for tests, CI and the lecture: started in a folder, stopped on exit.

FiftyOne keeps its datasets in MongoDB. Left alone, it starts one ``mongod`` per user, under
``~/.fiftyone``, and leaves it running after Python exits. :func:`fiftyone_environment` instead
puts the database in a folder of the caller's choosing and stops it on exit, so tests and executed
notebooks leave nothing behind.

FiftyOne has no public API for this, so the lifecycle reaches into FiftyOne's private internals.
These are exactly (see :data:`FIFTYONE_INTERNALS`):

* in ``fiftyone.core.odm.database``: the module globals ``_client`` (the pymongo client),
  ``_db_service`` (the ``DatabaseService`` that wraps ``mongod``) and ``_connection_kwargs`` (the
  port FiftyOne connects to), and the function ``_disconnect()``; plus the public ``get_db_conn()``,
  which connects;
* ``fiftyone.core.service.DatabaseService``: its ``attached`` flag (True when FiftyOne attached to
  another process's service), its ``stop()``, and the ``child`` process (a ``psutil.Popen``) of an
  instance;
* ``fiftyone.service.util.send_ipc_message``, to say goodbye to another process's service;
* the environment variable ``FIFTYONE_PRIVATE_DATABASE_PORT``, which FiftyOne sets to remember the
  port of the service it started.

A later FiftyOne release may move any of them, which is why ``segedu[coco]`` asks for
``fiftyone>=1.0,<1.23`` (tested: 1.22.1). :func:`check_fiftyone_internals` looks for each one
before anything is started, and a missing one raises a ``RuntimeError`` that names the FiftyOne
version, the missing internal and the fix, instead of failing half-way or leaving ``mongod``
running.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

__all__ = [
    "FIFTYONE_INTERNALS",
    "TESTED_FIFTYONE",
    "FiftyOneEnvironment",
    "check_fiftyone_internals",
    "fiftyone_environment",
]

#: The FiftyOne release the lifecycle was tested with, and the range ``segedu[coco]`` installs.
TESTED_FIFTYONE = "1.22.1"
_SUPPORTED = ">=1.0,<1.23"
_FIX = (
    f'install a FiftyOne release that has it: pip install "fiftyone{_SUPPORTED}" (tested: '
    f'pip install "fiftyone=={TESTED_FIFTYONE}"), or reinstall segedu with pip install "segedu[coco]"'
)

_DATABASE = "fiftyone.core.odm.database"
_SERVICE = "fiftyone.core.service"
_SERVICE_UTIL = "fiftyone.service.util"

#: The FiftyOne internals :func:`fiftyone_environment` uses, as ``(module, attribute path)``. The
#: ``child`` process of a ``DatabaseService`` is an instance attribute: it is checked once the
#: service exists.
FIFTYONE_INTERNALS = (
    (_DATABASE, "_client"),
    (_DATABASE, "_db_service"),
    (_DATABASE, "_connection_kwargs"),
    (_DATABASE, "_disconnect"),
    (_DATABASE, "get_db_conn"),
    (_SERVICE, "DatabaseService.attached"),
    (_SERVICE, "DatabaseService.stop"),
    (_SERVICE_UTIL, "send_ipc_message"),
)
_CALLABLE = {"_disconnect", "get_db_conn", "DatabaseService.stop", "send_ipc_message"}
_MISSING = object()


def _fiftyone_version() -> str:
    try:
        from importlib.metadata import version

        return version("fiftyone")
    except Exception:  # pragma: no cover - metadata missing (e.g. a source checkout)
        constants = sys.modules.get("fiftyone.constants")
        return str(getattr(constants, "VERSION", "unknown"))


def _import_fiftyone():
    try:
        import fiftyone
    except ImportError as exc:
        raise ImportError(
            f"fiftyone_environment needs FiftyOne, which is not installed ({exc}). Install the course's "
            f'COCO extra: pip install "segedu[coco]" (FiftyOne{_SUPPORTED}).'
        ) from exc
    return fiftyone


def _internal_error(name: str, problem: str) -> RuntimeError:
    return RuntimeError(
        f"segedu's fiftyone_environment cannot run with FiftyOne {_fiftyone_version()}: the FiftyOne "
        f"internal {name} {problem}. segedu starts and stops FiftyOne's private database through "
        f"internals that change between releases; it supports fiftyone{_SUPPORTED} and was tested "
        f"with FiftyOne {TESTED_FIFTYONE}. Fix: {_FIX}."
    )


def check_fiftyone_internals() -> None:
    """Check that every FiftyOne internal in :data:`FIFTYONE_INTERNALS` exists; start nothing.

    Imports FiftyOne (which connects to no database) and looks each internal up.

    Raises
    ------
    ImportError
        FiftyOne is not installed (install ``segedu[coco]``).
    RuntimeError
        An internal is missing or is not what it was: the message names the FiftyOne version, the
        internal, and the fix (install ``fiftyone<1.23``, or the tested release).
    """
    _import_fiftyone()
    for module_name, path in FIFTYONE_INTERNALS:
        name = f"{module_name}.{path}"
        try:
            value = importlib.import_module(module_name)
        except ImportError:
            raise _internal_error(name, f"cannot be imported (there is no module {module_name})") from None
        for part in path.split("."):
            value = getattr(value, part, _MISSING)
            if value is _MISSING:
                raise _internal_error(name, "does not exist")
        if path in _CALLABLE and not callable(value):
            raise _internal_error(name, f"is not a function (it is a {type(value).__name__})")
        if path == "_connection_kwargs" and not isinstance(value, dict):
            raise _internal_error(name, f"is not a dict (it is a {type(value).__name__})")


class FiftyOneEnvironment:
    """What :func:`fiftyone_environment` yields: where the database lives and whether we own it."""

    def __init__(self, database_dir: Path):
        self.database_dir = database_dir
        #: True when FiftyOne attached to a database service another process had already started
        #: (then the database is not in ``database_dir``, and we leave that service running).
        self.attached = False
        #: The pid of the ``mongod`` this environment started (None if it attached to another).
        self.mongod_pid = None

    def __repr__(self):
        return (
            f"FiftyOneEnvironment(database_dir={str(self.database_dir)!r}, attached={self.attached}, "
            f"mongod_pid={self.mongod_pid})"
        )


@contextlib.contextmanager
def fiftyone_environment(tmpdir, do_not_track: bool = True):
    """Run FiftyOne with its database in ``tmpdir`` and stop that database on exit.

    On entry it checks FiftyOne's internals (:func:`check_fiftyone_internals`), sets
    ``FIFTYONE_DATABASE_DIR=<tmpdir>/fiftyone-db`` (read by FiftyOne's database service when it
    starts ``mongod``) and ``FIFTYONE_DO_NOT_TRACK=true``, and connects, which starts a private
    ``mongod``. On exit it disconnects, closes the database service (FiftyOne's service wrapper then
    terminates ``mongod`` and exits), waits for it to finish, and restores the environment
    variables, so no ``mongod`` is left running and a later FiftyOne call in the same process starts
    afresh. Use it for tests and CI; notebooks in Colab need none of this.

    If another process of the same user already runs a FiftyOne database service, FiftyOne attaches
    to it instead of starting its own: then ``env.attached`` is True, the datasets created inside
    the block are deleted on exit, and the other process's service is left alone.

    Raises
    ------
    ImportError
        FiftyOne is not installed (install ``segedu[coco]``).
    RuntimeError
        FiftyOne lacks an internal this function needs (the message names the version, the
        internal and the fix; nothing was started), or FiftyOne is already connected in this process
        (its database was chosen already).

    Examples
    --------
    >>> with fiftyone_environment(tmp) as env:                      # doctest: +SKIP
    ...     dataset = fiftyone_dataset(write_coco_instances(tmp / "coco"))
    ...     print(dataset.count())
    """
    database_dir = Path(tmpdir) / "fiftyone-db"
    env = FiftyOneEnvironment(database_dir)
    check_fiftyone_internals()  # before anything is changed or started

    import fiftyone as fo
    import fiftyone.core.odm.database as fod

    if fod._client is not None or fod._db_service is not None:
        raise RuntimeError(
            "FiftyOne is already connected to a database in this process, so "
            "fiftyone_environment cannot move it. Enter fiftyone_environment before any other "
            "FiftyOne call (or in a fresh process)."
        )

    database_dir.mkdir(parents=True, exist_ok=True)
    settings = {"FIFTYONE_DATABASE_DIR": str(database_dir)}
    if do_not_track:
        settings["FIFTYONE_DO_NOT_TRACK"] = "true"
    saved = {k: os.environ.get(k) for k in (*settings, "FIFTYONE_PRIVATE_DATABASE_PORT")}
    # fo.config was read when fiftyone was first imported: align it with the variables.
    saved_config = (fo.config.database_dir, fo.config.do_not_track)
    connecting = False
    before = set()
    try:
        os.environ.update(settings)
        os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
        fo.config.database_dir = str(database_dir)
        if do_not_track:
            fo.config.do_not_track = True
        connecting = True
        fod.get_db_conn()  # connect now: this starts (or attaches to) the database service
        service = fod._db_service
        if service is not None:
            if not hasattr(service, "child"):
                raise _internal_error(f"{_SERVICE}.DatabaseService().child", "does not exist")
            env.attached = bool(getattr(service, "attached", False))
            if not env.attached and service.child is not None:
                children = service.child.children(recursive=True)
                env.mongod_pid = children[0].pid if children else None
        before = set(fo.list_datasets())
        yield env
    finally:
        try:
            if connecting:
                _shutdown_fiftyone(env, before)
        finally:
            fo.config.database_dir, fo.config.do_not_track = saved_config
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _shutdown_fiftyone(env: FiftyOneEnvironment, before: set) -> None:
    import fiftyone as fo
    import fiftyone.core.odm.database as fod

    if env.attached:  # the database is someone else's: remove only what we made
        for name in set(fo.list_datasets()) - before:
            try:
                fo.delete_dataset(name)
            except Exception:  # pragma: no cover - best effort
                pass
    fod._disconnect()
    service = fod._db_service
    fod._db_service = None
    if service is not None:
        child = getattr(service, "child", None)
        if getattr(service, "attached", False):
            import fiftyone.service.util as fosu

            try:  # tell the other process's service that we are gone
                fosu.send_ipc_message(child, ("unregister", os.getpid()))
            except Exception:  # pragma: no cover - best effort
                pass
            service.attached = False
            service.child = None
        else:
            service.stop()  # closes the wrapper's stdin: it terminates mongod, then exits
            if child is not None:
                import psutil  # a FiftyOne dependency

                try:
                    child.wait(timeout=60)
                except psutil.TimeoutExpired:  # pragma: no cover - last resort, only our own process
                    child.kill()
                    child.wait(timeout=10)
            _stop_own_mongod(env)
    for key in ("port", "host"):
        fod._connection_kwargs.pop(key, None)


def _stop_own_mongod(env: FiftyOneEnvironment) -> None:
    """Make sure the ``mongod`` this environment started is gone (it normally is by now)."""
    if env.mongod_pid is None:
        return
    import psutil

    try:
        process = psutil.Process(env.mongod_pid)
        if str(env.database_dir) not in " ".join(process.cmdline()):
            return  # the pid was reused by an unrelated process
        process.wait(timeout=10)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:  # pragma: no cover - the service wrapper failed to stop it
        process.terminate()
        try:
            process.wait(timeout=20)
        except psutil.TimeoutExpired:
            process.kill()
