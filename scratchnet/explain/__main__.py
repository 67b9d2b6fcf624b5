"""``python -m scratchnet.explain``: the pitfall rules as docs/explain.md lists them (made
from :data:`~scratchnet.explain.rules.RULES` by ``make docs``)."""

from .rules import markdown

print(markdown(), end="")
