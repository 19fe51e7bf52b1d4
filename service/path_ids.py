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
