"""One module per command: options -> core call -> render. No paramiko, yaml or git here."""
