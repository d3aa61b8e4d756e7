"""MQTT topic names."""

PREFIX = "flops/projects"
ALL_PROJECT_EVENTS = f"{PREFIX}/+/events"


def project_events(project_id: str) -> str:
    """The topic every event of one project is published on."""
    return f"{PREFIX}/{project_id}/events"


def project_replay(project_id: str) -> str:
    """The topic on which the manager hands a project's observer the events it published before listening."""
    return f"{PREFIX}/{project_id}/replay"
