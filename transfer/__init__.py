"""Laptop side, the link to hosts: everything that crosses SSH or touches the local machine.

No UI imports. Every operation is async and reports progress as plain event objects.
"""
