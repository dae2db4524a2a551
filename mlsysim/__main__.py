"""``python -m mlsysim``: the command line (``python -m mlsysim eval ResNet50 A100``)."""

from .cli import run

run()
