"""Rules files: TOML loading with source positions, expression parsing and checking."""
