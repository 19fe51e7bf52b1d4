"""Ids that arrive in a URL path follow the same rule as ids in a request body."""

from pydantic import TypeAdapter, ValidationError

from service.domain import ExternalId
from service.errors import ValidationFailed

_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)


def checked_id(value: str, field: str) -> str:
    """``value`` when it is a valid id, else ``ValidationFailed`` naming ``field``."""
    try:
        return _EXTERNAL_ID.validate_python(value)
    except ValidationError as error:
        raise ValidationFailed.from_pydantic(error, prefix=field) from None


def same_target(path_value: str, path_field: str, named: str, body_field: str) -> str:
    """The path's id, when the signed body names that same target in ``body_field``.

    The webhook signature covers the body only, so a body that names its own target cannot be
    replayed against another article or comment."""
    checked_id(path_value, path_field)
    if named != path_value:
        raise ValidationFailed(
            [(body_field, f"must be {path_value!r}, the {path_field} of the request path")]
        )
    return path_value
