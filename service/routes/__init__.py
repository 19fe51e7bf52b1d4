"""HTTP routes, one module per area; handlers parse, call one domain function, shape the answer.

The areas are put together in ``service.app``; this package imports none of them, so importing
one module of it (``state``, for instance) never drags in every handler.
"""
