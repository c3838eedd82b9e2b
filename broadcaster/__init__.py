"""broadcaster."""
