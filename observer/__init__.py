"""The per-project observer: follows a project's events and writes its timeline."""
