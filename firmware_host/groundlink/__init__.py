"""The ground link: MQTT session, store-and-forward stream, authenticated command intake."""
