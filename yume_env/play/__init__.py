"""``yume-world play``: a local web page to play a world by hand, fork and rewind it, and record it.

See :mod:`yume_env.play.server` (the aiohttp app), :mod:`yume_env.play.protocol` (the messages),
:mod:`yume_env.play.session` (one world per tab) and :mod:`yume_env.play.cli`. Needs the ``play``
extra: ``pip install "yume-env[play]"``.
"""
