"""Scale-out on Redis: the shared rate limiter (and, later, the campaign backend).

Everything here is private; :mod:`agile_async.scaleout` is the public face. ``redis`` and
``coredis`` are imported lazily, only when a client of theirs is used.
"""
