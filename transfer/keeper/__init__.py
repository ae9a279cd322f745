"""The connection keeper: a small background process that keeps SSH connections, and one
waiting shell on each host, between ``gputui push``/``pull`` commands (as ssh's ControlPersist
does for ssh). A push then skips the connection, the host's shell start-up and this side's
imports; it ends after ``GPUTUI_KEEP_S`` seconds (default 300) with nothing to do.

``client`` (the command's side) uses the standard library only; ``server`` runs the sync engine.
"""
