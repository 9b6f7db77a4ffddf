"""Pull: what a device downloads to work offline, paged by server-assigned cursors."""
