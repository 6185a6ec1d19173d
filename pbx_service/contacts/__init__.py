"""The known-customers directory: who is calling, their tier and account manager.

- `lookup` / `ContactDirectory.get`: caller number (any spelling) → `Contact` or None.
- `import_contacts`: a CRM CSV export → the directory, in one transaction (`parse_csv` is
  the pure part).

Tables: ``contacts`` and ``contact_numbers`` (`pbx_service.store.contacts_models`).
"""

from pbx_service.contacts.directory import ContactDirectory, lookup, normalise_caller
from pbx_service.contacts.errors import ColumnMappingError, ContactFileError, ContactsError
from pbx_service.contacts.importer import (
    ColumnMapping,
    ImportReport,
    ParsedCsv,
    PhoneColumn,
    import_contacts,
    import_parsed,
    parse_csv,
)
from pbx_service.contacts.model import EMPTY_TIER, Contact, parse_tier

__all__ = [
    "EMPTY_TIER",
    "ColumnMapping",
    "ColumnMappingError",
    "Contact",
    "ContactDirectory",
    "ContactFileError",
    "ContactsError",
    "ImportReport",
    "ParsedCsv",
    "PhoneColumn",
    "import_contacts",
    "import_parsed",
    "lookup",
    "normalise_caller",
    "parse_csv",
    "parse_tier",
]
