"""Reading the environment one variable at a time, so every error names the variable at fault."""

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from service.egress import Network, parse_allowed

_Choice = TypeVar("_Choice", bound=str)

# Plain ASCII digits only: int() and float() would also take "1_000", "１０" or "٨٠٨٠", and
# float() "1e3", "inf" or "nan", none of which an operator means as a setting.
# A leading minus is read, so that a value below the range is told so; past 18 digits int()
# would refuse (or take long over) what no setting needs.
_WHOLE = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?(?:[0-9]{1,18}(?:\.[0-9]*)?|\.[0-9]+)")


class SettingsError(ValueError):
    """The environment does not describe a runnable service; the message says what to fix."""


class RecordingEnviron(dict[str, str]):
    """An empty environment that notes each name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


class EnvReader:
    """Parses one variable at a time so every error names the variable at fault."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, allowed: tuple[_Choice, ...], default: _Choice) -> _Choice:
        raw = self._environ.get(name)
        if raw is None:
            return default
        # Set but empty is refused like any other value: it is more likely a variable that was
        # meant to be filled in (``CIVILITY_ENV=${ENV}``) than a wish for the default.
        value = raw.strip()
        for option in allowed:
            if value == option:
                return option
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")

    def networks(self, name: str) -> tuple[Network, ...]:
        try:
            return parse_allowed(self.optional(name) or "")
        except ValueError as error:
            raise SettingsError(f"{name}: {error}") from None

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        number = self.optional_integer(name, low=low, high=high)
        return default if number is None else number

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        value = self.optional(name)
        if value is None:
            return None
        if not _WHOLE.fullmatch(value):
            raise SettingsError(f"{name} must be a whole number, not {value!r}")
        number = int(value)
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {number}")
        return number

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        if not _DECIMAL.fullmatch(value):
            raise SettingsError(f"{name} must be a number, not {value!r}")
        number = float(value)
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {number}")
        return number
