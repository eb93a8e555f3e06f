"""``python -m agile_async``: the ``agile-sms`` command, for when scripts are not on PATH."""

from ._cli import main

if __name__ == "__main__":
    main()
