"""``python -m service`` is the ``civility`` command."""

from service.cli import entry

entry()
