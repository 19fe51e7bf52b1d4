"""Adapters that let clients of Perspective, Akismet and Coral Talk use civility unchanged.

Each module here parses one protocol's requests into the domain's objects and shapes the domain's
answers back into that protocol; the routes in ``service/routes/compat_*.py`` call the same
``Moderation`` functions, policy and label log as the native API.
"""
