"""Push and pull between this machine and a host: planned like rsync, resumable, verified.

``Sync(link, SyncRequest(...), on_event).run()`` does one transfer and returns a SyncResult;
progress arrives as the plain events of :mod:`transfer.sync.events`.
"""
