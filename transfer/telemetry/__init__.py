"""Live telemetry of every host: streams of samples, their history, cost and the idle flag.

``stream.TelemetryStream`` reads one host; ``fleet.HostTelemetry`` folds its events into what the
views show; ``history``, ``cost``, ``idle`` and ``uptime`` are the pieces it is made of.
"""

#: Seconds between two samples of a host, unless a view asks for another pace.
DEFAULT_INTERVAL_S = 1.0
