"""Detached jobs on a host: launch, state, stop, logs, attach.

A job lives in its own folder on the host (``protocol/jobdir.py``) and runs in a tmux session
named after its id, through a small POSIX-shell wrapper (``wrapper.py``). Everything here works
through a :class:`transfer.link.Link`, so the built-in ``local`` host and SSH hosts behave alike.
Import from the modules themselves (``transfer.jobs.host``, ``.launch``, ``.state`` …): the package
loads nothing, so a view that only reads job states does not pay for launching or stopping them.
"""
