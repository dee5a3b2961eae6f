"""Tables, repositories and migrations. May import ``dialogs`` types; never ``bot``."""
