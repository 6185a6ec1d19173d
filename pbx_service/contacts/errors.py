"""Errors of the known-customers directory, rooted at `ContactsError`.

Database failures surface as `pbx_service.store.errors.StoreError` subclasses
(`DatabaseUnavailableError` when PostgreSQL cannot be reached), like the rest of storage.
"""

from __future__ import annotations

from pbx_service.errors import PbxError


class ContactsError(PbxError):
    """Anything that went wrong with the contacts directory."""

    error_id = "contacts-error"


class ColumnMappingError(ContactsError):
    """A column mapping that cannot be parsed, or that names columns the file lacks."""

    error_id = "contacts-bad-column-mapping"


class ContactFileError(ContactsError):
    """A contacts file that cannot be read as CSV: missing, undecodable, no header row."""

    error_id = "contacts-bad-file"


class DirectorySettingsError(ContactsError, ValueError):
    """A `ContactDirectory` built with settings it cannot work with."""

    error_id = "contacts-bad-directory-settings"
