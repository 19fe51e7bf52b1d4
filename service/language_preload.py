"""Importing this loads the language detector: the scoring workers' fork server imports it first,
so every worker it forks shares the detector's tables (~110 MB, only ever read) instead of
loading a copy of its own."""

from service import language

language.load()
