"""The only package that holds SQL text or imports a database driver."""
