"""Running Muster for real: backups, moving databases, data lifecycle, metrics, process setup."""
