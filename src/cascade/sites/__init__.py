"""Many Nightscout sites in one lake: the registry (`ops.sites`) and pseudonymous subject ids.

Public API: `add_site`, `list_sites`, `remove_site`, `import_sites` (registry), `ingest_sites`
(in `cascade.ingest`), and the click group `sites` in `cascade.sites.commands`.
"""

from cascade.sites.registry import (
    Site,
    SitesError,
    add_site,
    import_sites,
    list_sites,
    remove_site,
    shortcut_site,
)
from cascade.sites.subjects import SubjectKeyError, normalise_url, subject_id

__all__ = [
    "Site",
    "SitesError",
    "SubjectKeyError",
    "add_site",
    "import_sites",
    "list_sites",
    "normalise_url",
    "remove_site",
    "shortcut_site",
    "subject_id",
]
