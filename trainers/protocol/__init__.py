"""The host protocol: what the laptop (tui/, transfer/) and the GPU host (trainers/) agree on.

The job folder layout (``jobdir``), the progress-line schema (``progress``), the GPU sample schema
(``gpu_sample``) and its text form (``sample_text``), nvidia-smi and /proc parsing (``smi``), and
the idle rule (``idle_rule``). Standard library only: the only part of trainers/ that tui/ and
transfer/ import, and cheap to import on a bare host.
"""
