"""The projection file: the read side's own SQLite database, built from the journal by
`sync` and rebuildable from it at any time. Nothing here is a source of truth."""
