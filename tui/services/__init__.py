"""The app's services, one owner per concern, and the one typed way widgets and screens reach them.

``tui.services.base.ServicesApp`` owns the host profiles and ``jobs``, ``transfers`` and
``telemetry``, which share one link per host; ``services_of(node)`` hands them to a widget.
"""
