"""The read side: queries over the projection file, never the journal."""
