"""Every rate limit of the server (rest.md §1.5, §3.2.8, §3.12; websocket.md §1.7).

``FixedWindow`` (``window.py``) counts hits per key per window in the key-value store,
one round trip per hit; the ``send_message`` limit (``messages.py``, with its bounded
in-memory fallback) is built on it. The global HTTP limit (``http.py``), on every request,
counts in process and shares its counts in batches (``batched.py``: the same windows, no
round trip per hit). The contract gives the other two their
own algorithms: Better Auth's limiter (``auth.py``) restarts its window with each
accepted request, and the sandbox's (``sandbox.py``) is a sliding log of accepted runs.
"""
