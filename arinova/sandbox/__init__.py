"""The JavaScript sandbox of ``POST /api/sandbox/execute`` (behaviours.md §6, quirk Q03).

``engine`` runs one script in QuickJS; ``worker`` is the child process that runs
``engine``; ``pool`` keeps a few such processes and talks to them from the event loop;
``fair`` shares the worker slots between users (one run at a time each, round-robin, bounded
waits); ``service.Sandbox`` is what the server holds (``state.sandbox``). This package module
imports nothing, so the worker process starts light.
"""
