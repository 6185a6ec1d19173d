"""The root of the project's error tree.

Every error the project raises on purpose derives from `PbxError` and carries a stable
kebab-case `error_id`, so the CLI, the ops web page and logs can name it. Protocol adapters
translate foreign exceptions (aiohttp, asyncpg, ...) into their own subclasses at the edge with
`raise ... from exc`.
"""


class PbxError(Exception):
    error_id = "pbx-error"
