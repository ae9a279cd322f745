"""GPU-host side of gputui: what runs next to the GPU.

Every module here is runnable with ``python -m trainers.<module>`` on a bare host. Heavy imports
(torch, transformers) stay inside functions so the sampler and the watchdog start in milliseconds.
"""
