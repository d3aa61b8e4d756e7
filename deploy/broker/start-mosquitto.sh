#!/bin/sh
# Starts Mosquitto with the compose suite's config, listening on 127.0.0.1:${FLOPS_MQTT_PORT:-1883}.
# (Plain sh: the base image has no sed or grep.)
while IFS= read -r line; do
  case "$line" in
    listener*) echo "listener ${FLOPS_MQTT_PORT:-1883} 127.0.0.1" ;;
    *) echo "$line" ;;
  esac
done < /etc/flops/mosquitto.conf > /tmp/mosquitto.conf
exec /usr/sbin/mosquitto -c /tmp/mosquitto.conf
