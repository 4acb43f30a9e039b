"""The building blocks every part of the line's configuration model uses.

The id pattern, the number constraints and :class:`Strict`, the base of every section: unknown
keys are errors (a misspelt key must not be ignored silently) and a loaded configuration is
frozen. The sections themselves are in the sibling ``model_*`` modules and are all importable
from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
