"""Project tooling that is not part of the package (the documentation build's checks)."""
