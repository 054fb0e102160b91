"""The operators' CLI for an Inkwell release: one tool with exit codes instead of a page of kubectl."""
