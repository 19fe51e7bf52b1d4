"""Preloaded by a fork server in the Ctrl-C tests: importing it holds the fork server at the
gate ``fork server`` (``tests.service.start_gates``), where it would be importing the model's
libraries."""

from tests.service.start_gates import wait_at

wait_at("fork server")
