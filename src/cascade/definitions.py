"""`dagster dev -m cascade.definitions`: a thin entry point over the `cascade.defs` package.

Definitions are built lazily, when Dagster loads the code location, so importing this module
reads no environment.
"""

import dagster as dg

from cascade.defs import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
