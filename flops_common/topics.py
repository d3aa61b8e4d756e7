"""MQTT topic names."""

PREFIX = "flops/projects"
ALL_PROJECT_EVENTS = f"{PREFIX}/+/events"


def project_events(project_id: str) -> str:
    """The topic every event of one project is published on."""
    return f"{PREFIX}/{project_id}/events"
