"""Contracts every FLOps service shares: SLA, events, topics, jobs, image keys.

Only pydantic and paho-mqtt may be imported from here: the FL actors carry this package.
"""
