"""civility's classifier: text normalisation, features, training, evaluation and scoring.

Pure machine learning: nothing here imports from ``service`` or does network or Redis I/O.
"""
