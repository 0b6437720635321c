"""One thin module per command: options -> one action -> one render."""
