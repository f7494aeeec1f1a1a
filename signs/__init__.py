"""Cross-framework tools: weight conversion, three-way verification, training driver and CLI.

This package imports TensorFlow and PyTorch lazily, only inside the functions that need them, so
``import signs`` and ``signs --help`` work with neither installed.
"""
