"""``python -m agile_async._cli``: the same as ``agile-sms``."""

from . import main

main()
